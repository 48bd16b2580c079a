/*
 * Loads a Node addon with musl's dynamic loader, the way Node on Alpine
 * does (dlopen with RTLD_NOW), without Node: every undefined symbol of the
 * addon must then resolve against musl's libc, and its initializers run.
 * zcio's addon looks up the Node-API functions at run time, so it has none
 * undefined; if a future build had, this load would fail and say which.
 *
 *   musl-load ADDON
 *
 * Exits 0 when the addon loaded and exports napi_register_module_v1.
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s ADDON\n", argv[0]);
    return 2;
  }
  void *addon = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!addon) {
    fprintf(stderr, "dlopen failed: %s\n", dlerror());
    return 1;
  }
  if (!dlsym(addon, "napi_register_module_v1")) {
    fprintf(stderr, "loaded, but napi_register_module_v1 is missing: %s\n", dlerror());
    return 1;
  }
  printf("loaded with RTLD_NOW; napi_register_module_v1 found\n");
  return 0;
}
