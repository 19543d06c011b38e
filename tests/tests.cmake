#  One CTest entry per libcommon class (CZMQ's selftest shape).
foreach (class util hash pow json tx block msg config store)
    add_test (NAME selftest.cbus_${class}
              COMMAND cbus_selftest --test cbus_${class})
endforeach ()
