/*  =========================================================================
    cbus_www - the dashboard's static files
    =========================================================================
*/
#include "cbus_www.h"
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>

//  Longest URL path served; longer ones are refused.
#define S_PATH_MAX 256

struct _cbus_www_t {
    char *dir;                  //  Folder served, no trailing slash
};

cbus_www_t *
cbus_www_new (const char *dir)
{
    cbus_www_t *self = (cbus_www_t *) zmalloc (sizeof (cbus_www_t));
    if (dir && *dir)
        self->dir = strdup (dir);
    else {
        char exe [PATH_MAX];
        ssize_t size = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
        if (size > 0) {
            exe [size] = 0;
            self->dir = zsys_sprintf ("%s/../share/www", dirname (exe));
        }
        else
            self->dir = strdup ("share/www");
    }
    size_t size = strlen (self->dir);
    while (size > 1 && self->dir [size - 1] == '/')
        self->dir [--size] = 0;
    return self;
}

void
cbus_www_destroy (cbus_www_t **self_p)
{
    assert (self_p);
    cbus_www_t *self = *self_p;
    if (self) {
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

const char *
cbus_www_dir (cbus_www_t *self)
{
    return self->dir;
}

//  True if every segment of the relative path is a plain name.
static bool
s_path_safe (const char *path)
{
    if (!*path || strlen (path) > S_PATH_MAX || strchr (path, '\\'))
        return false;
    const char *segment = path;
    while (true) {
        const char *end = strchr (segment, '/');
        size_t size = end ? (size_t) (end - segment) : strlen (segment);
        if (size == 0
        || (size == 1 && segment [0] == '.')
        || (size == 2 && segment [0] == '.' && segment [1] == '.'))
            return false;
        if (!end)
            return true;
        segment = end + 1;
    }
}

int
cbus_www_open (cbus_www_t *self, const char *path, uint64_t *size_p,
               const char **type_p)
{
    if (!path || path [0] != '/')
        return -1;
    const char *relative = streq (path, "/") ? "index.html" : path + 1;
    if (!s_path_safe (relative))
        return -1;
    char *file = zsys_sprintf ("%s/%s", self->dir, relative);
    int fd = open (file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    free (file);
    if (fd < 0)
        return -1;
    struct stat info;
    if (fstat (fd, &info) || !S_ISREG (info.st_mode)) {
        close (fd);
        return -1;
    }
    //  The fd is read with blocking pread or sendfile on a regular file.
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
    *size_p = (uint64_t) info.st_size;
    *type_p = cbus_www_content_type (relative);
    return fd;
}

const char *
cbus_www_content_type (const char *name)
{
    static const struct {
        const char *extension;
        const char *type;
    } s_types [] = {
        { ".html", "text/html; charset=utf-8" },
        { ".htm",  "text/html; charset=utf-8" },
        { ".js",   "text/javascript; charset=utf-8" },
        { ".mjs",  "text/javascript; charset=utf-8" },
        { ".css",  "text/css; charset=utf-8" },
        { ".json", "application/json" },
        { ".map",  "application/json" },
        { ".txt",  "text/plain; charset=utf-8" },
        { ".svg",  "image/svg+xml" },
        { ".png",  "image/png" },
        { ".jpg",  "image/jpeg" },
        { ".jpeg", "image/jpeg" },
        { ".gif",  "image/gif" },
        { ".ico",  "image/x-icon" },
        { ".webp", "image/webp" },
        { ".woff", "font/woff" },
        { ".woff2", "font/woff2" },
        { ".wasm", "application/wasm" },
    };
    const char *dot = strrchr (name, '.');
    if (dot && !strchr (dot, '/'))
        for (size_t index = 0; index < sizeof (s_types) / sizeof (s_types [0]); index++)
            if (strcasecmp (dot, s_types [index].extension) == 0)
                return s_types [index].type;
    return "application/octet-stream";
}

void
cbus_www_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_www: ");
    char dir [] = "/tmp/cbus_www_test_XXXXXX";
    assert (mkdtemp (dir));
    char *file = zsys_sprintf ("%s/index.html", dir);
    FILE *out = fopen (file, "w");
    assert (out);
    fputs ("<p>hi</p>", out);
    fclose (out);
    char *sub = zsys_sprintf ("%s/css", dir);
    assert (mkdir (sub, 0700) == 0);

    cbus_www_t *www = cbus_www_new (dir);
    uint64_t size;
    const char *type;
    int fd = cbus_www_open (www, "/", &size, &type);
    assert (fd >= 0 && size == 9 && streq (type, "text/html; charset=utf-8"));
    close (fd);
    fd = cbus_www_open (www, "/index.html", &size, &type);
    assert (fd >= 0);
    close (fd);
    assert (cbus_www_open (www, "/missing.js", &size, &type) == -1);
    assert (cbus_www_open (www, "/css", &size, &type) == -1);          //  A folder
    assert (cbus_www_open (www, "/../etc/passwd", &size, &type) == -1);
    assert (cbus_www_open (www, "/css/../index.html", &size, &type) == -1);
    assert (cbus_www_open (www, "//index.html", &size, &type) == -1);
    assert (cbus_www_open (www, "/./index.html", &size, &type) == -1);
    assert (cbus_www_open (www, "index.html", &size, &type) == -1);
    assert (streq (cbus_www_content_type ("a/b.JS"), "text/javascript; charset=utf-8"));
    assert (streq (cbus_www_content_type ("v1.0/readme"), "application/octet-stream"));
    cbus_www_destroy (&www);
    cbus_www_destroy (&www);

    www = cbus_www_new ("");
    assert (strstr (cbus_www_dir (www), "/share/www"));
    cbus_www_destroy (&www);

    unlink (file);
    rmdir (sub);
    rmdir (dir);
    free (file);
    free (sub);
    if (verbose)
        printf ("OK\n");
}
