// The CUDA headers refuse a host compiler with a sentence (they would otherwise fail deep inside CUDA headers).
#if defined(FUSEKIT_EXPECT_COMPILE_ERROR)
#include <fusekit/cuda.cuh>
#endif

int main() { return 0; }
