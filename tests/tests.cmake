#  One CTest entry per libcommon class (CZMQ's selftest shape).
foreach (class util code pack hash sha256 pow json tx key seal block msg msgs metrics calls caller config store layout chain)
    add_test (NAME selftest.cbus_${class}
              COMMAND cbus_selftest --test cbus_${class})
endforeach ()
add_test (NAME selftest.cbus_endpoint COMMAND cbus_selftest --test cbus_endpoint)
add_test (NAME selftest.cbus_keyfile COMMAND cbus_selftest --test cbus_keyfile)
add_test (NAME selftest.cbus_store_copy COMMAND cbus_selftest --test cbus_store_copy)

#  Functional tests: one CTest entry per file of tests/functional/, each
#  starting real nodes from this build's bin/ (so the sanitizer build runs
#  them against sanitizer binaries). Debian's python3 carries pytest and
#  friends; a python3 earlier on PATH (pyenv, a venv) may not.
find_program (CHAINBUS_PYTHON NAMES python3 HINTS /usr/bin)
file (GLOB CHAINBUS_FUNCTIONAL_TESTS CONFIGURE_DEPENDS
      ${CMAKE_SOURCE_DIR}/tests/functional/test_*.py)
foreach (test_file ${CHAINBUS_FUNCTIONAL_TESTS})
    get_filename_component (test_name ${test_file} NAME_WE)
    string (REGEX REPLACE "^test_" "" test_name ${test_name})
    add_test (NAME functional.${test_name}
              COMMAND ${CHAINBUS_PYTHON} -m pytest -q --maxfail=5 -p no:cacheprovider
                      -rfEs ${test_file}
              WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties (functional.${test_name} PROPERTIES
        ENVIRONMENT "CHAINBUS_BIN=${CMAKE_BINARY_DIR}/bin;PYTHONDONTWRITEBYTECODE=1;CHAINBUS_SCREENSHOTS=${CMAKE_BINARY_DIR}/screenshots"
        TIMEOUT 600
        LABELS functional)
    #  The dashboard's tests drive a real Chromium (chainbus_browser.py);
    #  a failed one leaves its screenshots in <build>/screenshots.
    if (test_name MATCHES "^dashboard")
        set_property (TEST functional.${test_name} APPEND PROPERTY LABELS browser)
    endif ()
endforeach ()

#  A test that needs a core to spare runs alone: in test_retarget a second
#  miner must raise the hash rate, which it cannot while another test
#  takes the other core.
set_tests_properties (functional.retarget PROPERTIES RUN_SERIAL TRUE)
