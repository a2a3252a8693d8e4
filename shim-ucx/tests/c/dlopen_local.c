/*
 * Loads a shared object RTLD_LOCAL and runs its `selfloop_main(argc, argv)`: the way Python wheels (NIXL, ucxx)
 * load their own libucp, which then is invisible to dlsym(RTLD_NEXT). Usage: dlopen_local LIB.so [ARGS...]
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s LIB.so [ARGS...]\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    int (*selfloop_main)(int, char **);
    *(void **)&selfloop_main = dlsym(lib, "selfloop_main");
    if (selfloop_main == NULL) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 2;
    }
    return selfloop_main(argc - 1, argv + 1);
}
