// golden.c writes the goldens of TestKQuantsMatchLlamaCpp: input.f32
// quantized by ggml's reference quantizers (the ones llama-quantize runs
// without an importance matrix), one file per type (TYPE.bin), and those
// blocks expanded again by ggml's dequantizers (TYPE.f32). Built against the
// ggml of llama.cpp that node-llama-cpp 3.22.1 bundles (see README.md),
// compiled without floating-point contraction:
//
//   gcc -O2 -ffp-contract=off -I$LLAMA/ggml/include -I$LLAMA/ggml/src golden.c \
//       $LLAMA/build/ggml/src/libggml-base.a -lstdc++ -lgomp -lm -lpthread -o golden && ./golden
#include <stdio.h>
#include <stdlib.h>
#include "ggml.h"
#include "ggml-quants.h"

enum { N = 2048 };

static void write_file(const char *name, const void *p, size_t n) {
	FILE *f = fopen(name, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(name);
		exit(1);
	}
}

// GOLDEN quantizes x as TYPE into NAME.bin and expands it into NAME.f32.
#define GOLDEN(TYPE, NAME, QK) \
	do { \
		quantize_row_##TYPE##_ref(x, (block_##TYPE *)out, N); \
		write_file(NAME ".bin", out, N / (QK) * sizeof(block_##TYPE)); \
		dequantize_row_##TYPE((block_##TYPE *)out, y, N); \
		write_file(NAME ".f32", y, sizeof y); \
	} while (0)

int main(void) {
	static float x[N];
	static unsigned char out[N * 2];
	static float y[N];
	FILE *f = fopen("input.f32", "rb");
	if (!f || fread(x, sizeof x[0], N, f) != N) {
		perror("input.f32");
		return 1;
	}
	fclose(f);
	GOLDEN(q2_K, "q2_k", QK_K);
	GOLDEN(q3_K, "q3_k", QK_K);
	GOLDEN(q4_K, "q4_k", QK_K);
	GOLDEN(q5_K, "q5_k", QK_K);
	GOLDEN(q6_K, "q6_k", QK_K);
	GOLDEN(q5_0, "q5_0", QK5_0);
	GOLDEN(q5_1, "q5_1", QK5_1);
	return 0;
}
