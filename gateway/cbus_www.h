/*  =========================================================================
    cbus_www - the dashboard's static files, served by the gateway

    Maps a URL path to a regular file under one folder: "/" is index.html,
    "/app.js" is app.js. Paths with an empty, "." or ".." segment, a
    backslash or a NUL are refused, so nothing outside the folder is
    reachable through a URL (a symlink placed in the folder by the
    operator is followed: that is the operator's choice).
    =========================================================================
*/
#ifndef CBUS_WWW_H_INCLUDED
#define CBUS_WWW_H_INCLUDED

#include "cbus.h"

typedef struct _cbus_www_t cbus_www_t;

//  Serve files from dir; when dir is empty, from share/www beside the
//  program (<dir of /proc/self/exe>/../share/www). Never fails: a folder
//  that does not exist just serves nothing.
cbus_www_t *
    cbus_www_new (const char *dir);
void
    cbus_www_destroy (cbus_www_t **self_p);
//  The folder served (borrowed).
const char *
    cbus_www_dir (cbus_www_t *self);

//  Open the file for a URL path. Returns an fd open for reading (the
//  caller closes it) and sets *size_p and *type_p (a Content-Type,
//  borrowed), or returns -1 if there is no such file or the path is
//  refused.
int
    cbus_www_open (cbus_www_t *self, const char *path, uint64_t *size_p,
                   const char **type_p);

//  Content-Type for a file name, by extension.
const char *
    cbus_www_content_type (const char *name);

void
    cbus_www_test (bool verbose);

#endif
