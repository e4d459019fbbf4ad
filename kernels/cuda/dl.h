// dl.h: the few CUDA driver, NVRTC and cuBLAS declarations the backend uses,
// declared here so that the build needs no CUDA headers. Every entry point
// is reached through a function pointer resolved at run time (dlsym for
// NVRTC and cuBLAS, cuGetProcAddress for the driver); these trampolines
// call one pointer each and return its status code unchanged.
#ifndef SLUICE_CUDA_DL_H
#define SLUICE_CUDA_DL_H

#include <stddef.h>
#include <stdint.h>

typedef int sl_cu_result;                 // CUresult; 0 is CUDA_SUCCESS
typedef unsigned long long sl_cu_devptr;  // CUdeviceptr

// dlopen/dlsym/dlclose; err receives dlerror() text (truncated) on failure.
void *sl_dlopen(const char *name, char *err, size_t errlen);
void *sl_dlsym(void *h, const char *name, char *err, size_t errlen);
void sl_dlclose(void *h);

// cuGetProcAddress, v2 (5 arguments) when get_v2 is set, else v1.
int sl_cu_get_proc(void *getproc, int is_v2, const char *sym, void **out, int version);

// Driver API trampolines.
int sl_cu_init(void *f, unsigned flags);
int sl_cu_driver_version(void *f, int *v);
int sl_cu_device_count(void *f, int *n);
int sl_cu_device_get(void *f, int *dev, int ordinal);
int sl_cu_device_attr(void *f, int *v, int attr, int dev);
int sl_cu_device_name(void *f, char *name, int len, int dev);
int sl_cu_primary_ctx_retain(void *f, void **ctx, int dev);
int sl_cu_primary_ctx_release(void *f, int dev);
int sl_cu_ctx_set_current(void *f, void *ctx);
int sl_cu_mem_get_info(void *f, size_t *free_b, size_t *total_b);
int sl_cu_mem_alloc(void *f, sl_cu_devptr *p, size_t n);
int sl_cu_mem_free(void *f, sl_cu_devptr p);
int sl_cu_memset_d8(void *f, sl_cu_devptr p, unsigned char v, size_t n, void *stream);
int sl_cu_memcpy_htod(void *f, sl_cu_devptr dst, const void *src, size_t n, void *stream);
int sl_cu_memcpy_dtoh(void *f, void *dst, sl_cu_devptr src, size_t n, void *stream);
int sl_cu_stream_create(void *f, void **s, unsigned flags);
int sl_cu_stream_destroy(void *f, void *s);
int sl_cu_stream_sync(void *f, void *s);
int sl_cu_module_load_data(void *f, void **mod, const void *image);
int sl_cu_module_unload(void *f, void *mod);
int sl_cu_module_get_function(void *f, void **fn, void *mod, const char *name);
int sl_cu_launch(void *f, void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
	unsigned shmem, void *stream, void **params);
int sl_cu_error_string(void *f, int code, const char **s);

// NVRTC trampolines.
int sl_nvrtc_version(void *f, int *major, int *minor);
int sl_nvrtc_create(void *f, void **prog, const char *src, const char *name);
int sl_nvrtc_compile(void *f, void *prog, int nopts, const char **opts);
int sl_nvrtc_size(void *f, void *prog, size_t *n);
int sl_nvrtc_get(void *f, void *prog, char *buf);
int sl_nvrtc_destroy(void *f, void **prog);
const char *sl_nvrtc_error_string(void *f, int code);

#endif

// A fake driver for the package's tests: host memory (malloc) stands in for
// device memory, copies are memcpy, and launches are recorded, not run.
// sl_fake_driver fills fns in the order of fakeDriver in fake_test.go.
typedef struct {
	void *fn;
	unsigned grid[3], block;
	unsigned long long args[16];
} sl_fake_launch;
void sl_fake_driver(void **fns, int n);
int sl_fake_launch_count(void);
sl_fake_launch sl_fake_launch_at(int i); // the i-th launch since the last reset
void sl_fake_reset(void);
int sl_fake_live_allocs(void);
