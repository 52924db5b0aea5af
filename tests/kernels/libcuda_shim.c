/* A C stand-in for libcuda.so.1 with the driver API's real C signatures, so that the runner's
 * ctypes declarations (argtypes, byref out-parameters, the void** of kernel parameters) are
 * exercised at the C ABI. "Device" memory is host memory; cuLaunchKernel runs vadd on the CPU,
 * reading its arguments through kernelParams exactly as the GPU launch would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream;
typedef uint64_t CUdeviceptr;

#define CTX ((void *)0x1234)
#define MOD ((void *)0x5678)
#define VADD ((void *)0x1)
static int launches = 0, allocations = 0;

CUresult cuInit(unsigned flags) { return flags == 0 ? 0 : 1; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(CUdevice *d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
CUresult cuDeviceGetName(char *name, int len, CUdevice d) { strncpy(name, "Shim GPU", len); return d == 0 ? 0 : 101; }
CUresult cuDeviceGetAttribute(int *v, int attr, CUdevice d) { *v = attr == 75 ? 9 : 0; return d == 0 ? 0 : 101; }
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { *c = CTX; return d == 0 ? 0 : 101; }
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) { return d == 0 ? 0 : 101; }
CUresult cuCtxSetCurrent(CUcontext c) { return c == CTX ? 0 : 201; }
CUresult cuCtxSynchronize(void) { return 0; }
CUresult cuModuleLoadData(CUmodule *m, const void *image) {
  const unsigned char *p = image;
  int fatbin = p[0] == 0x50 && p[1] == 0xed && p[2] == 0x55 && p[3] == 0xba;
  int elf = p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F';
  int ptx = strstr((const char *)image, ".target") != NULL; /* PTX must arrive NUL-terminated */
  if (!fatbin && !elf && !ptx) return 200; /* CUDA_ERROR_INVALID_IMAGE */
  *m = MOD;
  return 0;
}
CUresult cuModuleUnload(CUmodule m) { return m == MOD ? 0 : 400; }
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
  if (m != MOD) return 400;
  if (strcmp(name, "vadd") == 0) { *f = VADD; return 0; }
  return 500; /* CUDA_ERROR_NOT_FOUND */
}
CUresult cuFuncSetAttribute(CUfunction f, int attr, int v) { return f == VADD && attr == 8 && v > 0 ? 0 : 1; }
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
  void *m = calloc(1, n);
  if (!m) return 2;
  *p = (CUdeviceptr)(uintptr_t)m;
  allocations++;
  return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) { free((void *)(uintptr_t)p); allocations--; return 0; }
CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n) { memset((void *)(uintptr_t)p, v, n); return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n) { memcpy((void *)(uintptr_t)d, s, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t n) { memcpy(d, (void *)(uintptr_t)s, n); return 0; }
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, CUstream s, void **params, void **extra) {
  if (f != VADD || extra != NULL || s != NULL || params == NULL) return 1;
  const float *a = (const float *)(uintptr_t)*(CUdeviceptr *)params[0];
  const float *b = (const float *)(uintptr_t)*(CUdeviceptr *)params[1];
  float *c = (float *)(uintptr_t)*(CUdeviceptr *)params[2];
  int n = *(int *)params[3];
  unsigned long threads = (unsigned long)gx * gy * gz * bx * by * bz;
  for (long i = 0; i < n && (unsigned long)i < threads; i++) c[i] = a[i] + b[i];
  launches++;
  (void)shared;
  return 0;
}
CUresult cuStreamQuery(CUstream s) { return s == NULL ? 0 : 400; }
CUresult cuGetErrorName(CUresult e, const char **s) {
  *s = e == 500 ? "CUDA_ERROR_NOT_FOUND" : e == 200 ? "CUDA_ERROR_INVALID_IMAGE" : "CUDA_ERROR_UNKNOWN";
  return 0;
}
CUresult cuGetErrorString(CUresult e, const char **s) { *s = "shim error"; (void)e; return 0; }
int shim_launches(void) { return launches; }
int shim_allocations(void) { return allocations; }
