// dl.c: dlopen helpers and one-line trampolines over function pointers
// resolved at run time (see dl.h).
#include <dlfcn.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include "dl.h"

static void set_err(char *err, size_t errlen) {
	const char *e = dlerror();
	if (errlen == 0) return;
	snprintf(err, errlen, "%s", e ? e : "unknown error");
}

void *sl_dlopen(const char *name, char *err, size_t errlen) {
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h) set_err(err, errlen);
	return h;
}

void *sl_dlsym(void *h, const char *name, char *err, size_t errlen) {
	dlerror();
	void *p = dlsym(h, name);
	if (!p) set_err(err, errlen);
	return p;
}

void sl_dlclose(void *h) {
	if (h) dlclose(h);
}

typedef int (*getproc_v1)(const char *, void **, int, unsigned long long);
typedef int (*getproc_v2)(const char *, void **, int, unsigned long long, int *);

int sl_cu_get_proc(void *getproc, int is_v2, const char *sym, void **out, int version) {
	if (is_v2) {
		int status = 0;
		return ((getproc_v2)getproc)(sym, out, version, 0, &status);
	}
	return ((getproc_v1)getproc)(sym, out, version, 0);
}

int sl_cu_init(void *f, unsigned flags) { return ((int (*)(unsigned))f)(flags); }
int sl_cu_driver_version(void *f, int *v) { return ((int (*)(int *))f)(v); }
int sl_cu_device_count(void *f, int *n) { return ((int (*)(int *))f)(n); }
int sl_cu_device_get(void *f, int *dev, int ordinal) { return ((int (*)(int *, int))f)(dev, ordinal); }
int sl_cu_device_attr(void *f, int *v, int attr, int dev) { return ((int (*)(int *, int, int))f)(v, attr, dev); }
int sl_cu_device_name(void *f, char *name, int len, int dev) { return ((int (*)(char *, int, int))f)(name, len, dev); }
int sl_cu_primary_ctx_retain(void *f, void **ctx, int dev) { return ((int (*)(void **, int))f)(ctx, dev); }
int sl_cu_primary_ctx_release(void *f, int dev) { return ((int (*)(int))f)(dev); }
int sl_cu_ctx_set_current(void *f, void *ctx) { return ((int (*)(void *))f)(ctx); }
int sl_cu_mem_get_info(void *f, size_t *free_b, size_t *total_b) {
	return ((int (*)(size_t *, size_t *))f)(free_b, total_b);
}
int sl_cu_mem_alloc(void *f, sl_cu_devptr *p, size_t n) { return ((int (*)(sl_cu_devptr *, size_t))f)(p, n); }
int sl_cu_mem_free(void *f, sl_cu_devptr p) { return ((int (*)(sl_cu_devptr))f)(p); }
int sl_cu_memset_d8(void *f, sl_cu_devptr p, unsigned char v, size_t n, void *stream) {
	return ((int (*)(sl_cu_devptr, unsigned char, size_t, void *))f)(p, v, n, stream);
}
int sl_cu_memcpy_htod(void *f, sl_cu_devptr dst, const void *src, size_t n, void *stream) {
	return ((int (*)(sl_cu_devptr, const void *, size_t, void *))f)(dst, src, n, stream);
}
int sl_cu_memcpy_dtoh(void *f, void *dst, sl_cu_devptr src, size_t n, void *stream) {
	return ((int (*)(void *, sl_cu_devptr, size_t, void *))f)(dst, src, n, stream);
}
int sl_cu_stream_create(void *f, void **s, unsigned flags) { return ((int (*)(void **, unsigned))f)(s, flags); }
int sl_cu_stream_destroy(void *f, void *s) { return ((int (*)(void *))f)(s); }
int sl_cu_stream_sync(void *f, void *s) { return ((int (*)(void *))f)(s); }
int sl_cu_module_load_data(void *f, void **mod, const void *image) {
	return ((int (*)(void **, const void *))f)(mod, image);
}
int sl_cu_module_unload(void *f, void *mod) { return ((int (*)(void *))f)(mod); }
int sl_cu_module_get_function(void *f, void **fn, void *mod, const char *name) {
	return ((int (*)(void **, void *, const char *))f)(fn, mod, name);
}
typedef int (*launch_fn)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *,
	void **, void **);
int sl_cu_launch(void *f, void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
	unsigned shmem, void *stream, void **params) {
	return ((launch_fn)f)(fn, gx, gy, gz, bx, by, bz, shmem, stream, params, NULL);
}
int sl_cu_error_string(void *f, int code, const char **s) { return ((int (*)(int, const char **))f)(code, s); }

int sl_nvrtc_version(void *f, int *major, int *minor) { return ((int (*)(int *, int *))f)(major, minor); }
typedef int (*nvrtc_create_fn)(void **, const char *, const char *, int, const char *const *, const char *const *);
int sl_nvrtc_create(void *f, void **prog, const char *src, const char *name) {
	return ((nvrtc_create_fn)f)(prog, src, name, 0, NULL, NULL);
}
int sl_nvrtc_compile(void *f, void *prog, int nopts, const char **opts) {
	return ((int (*)(void *, int, const char **))f)(prog, nopts, opts);
}
int sl_nvrtc_size(void *f, void *prog, size_t *n) { return ((int (*)(void *, size_t *))f)(prog, n); }
int sl_nvrtc_get(void *f, void *prog, char *buf) { return ((int (*)(void *, char *))f)(prog, buf); }
int sl_nvrtc_destroy(void *f, void **prog) { return ((int (*)(void **))f)(prog); }
const char *sl_nvrtc_error_string(void *f, int code) { return ((const char *(*)(int))f)(code); }

// ---- fake driver (tests only; see dl.h) ----
#define SL_FAKE_LOG 64
static sl_fake_launch fake_log[SL_FAKE_LOG];
static int fake_n, fake_allocs;
static int fake_ok_u(unsigned a) { (void)a; return 0; }
static int fake_ok_p(void *a) { (void)a; return 0; }
static int fake_alloc(sl_cu_devptr *p, size_t n) {
	void *m = malloc(n);
	if (!m) return 2; // CUDA_ERROR_OUT_OF_MEMORY
	fake_allocs++;
	*p = (sl_cu_devptr)(uintptr_t)m;
	return 0;
}
static int fake_free(sl_cu_devptr p) {
	free((void *)(uintptr_t)p);
	fake_allocs--;
	return 0;
}
static int fake_memset(sl_cu_devptr p, unsigned char v, size_t n, void *s) {
	(void)s;
	memset((void *)(uintptr_t)p, v, n);
	return 0;
}
static int fake_htod(sl_cu_devptr d, const void *src, size_t n, void *s) {
	(void)s;
	memcpy((void *)(uintptr_t)d, src, n);
	return 0;
}
static int fake_dtoh(void *dst, sl_cu_devptr src, size_t n, void *s) {
	(void)s;
	memcpy(dst, (const void *)(uintptr_t)src, n);
	return 0;
}
static int fake_launch(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
	unsigned shmem, void *stream, void **params, void **extra) {
	(void)by, (void)bz, (void)shmem, (void)stream, (void)extra;
	sl_fake_launch *l = &fake_log[fake_n++ % SL_FAKE_LOG];
	l->fn = fn, l->grid[0] = gx, l->grid[1] = gy, l->grid[2] = gz, l->block = bx;
	for (int k = 0; k < 16; k++) l->args[k] = *(unsigned long long *)params[k];
	return 0;
}
static int fake_error_string(int code, const char **s) {
	(void)code;
	*s = "fake driver error";
	return 0;
}

void sl_fake_driver(void **fns, int n) {
	void *all[] = {(void *)fake_ok_u, (void *)fake_ok_p, (void *)fake_alloc, (void *)fake_free, (void *)fake_memset,
		(void *)fake_htod, (void *)fake_dtoh, (void *)fake_launch, (void *)fake_error_string};
	for (int i = 0; i < n && i < (int)(sizeof all / sizeof all[0]); i++) fns[i] = all[i];
}
int sl_fake_launch_count(void) { return fake_n; }
sl_fake_launch sl_fake_launch_at(int i) { return fake_log[i % SL_FAKE_LOG]; }
void sl_fake_reset(void) { fake_n = 0; }
int sl_fake_live_allocs(void) { return fake_allocs; }
