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
	quantize_row_q2_K_ref(x, (block_q2_K *)out, N);
	write_file("q2_k.bin", out, N / QK_K * sizeof(block_q2_K));
	dequantize_row_q2_K((block_q2_K *)out, y, N);
	write_file("q2_k.f32", y, sizeof y);
	quantize_row_q3_K_ref(x, (block_q3_K *)out, N);
	write_file("q3_k.bin", out, N / QK_K * sizeof(block_q3_K));
	dequantize_row_q3_K((block_q3_K *)out, y, N);
	write_file("q3_k.f32", y, sizeof y);
	quantize_row_q4_K_ref(x, (block_q4_K *)out, N);
	write_file("q4_k.bin", out, N / QK_K * sizeof(block_q4_K));
	dequantize_row_q4_K((block_q4_K *)out, y, N);
	write_file("q4_k.f32", y, sizeof y);
	quantize_row_q5_K_ref(x, (block_q5_K *)out, N);
	write_file("q5_k.bin", out, N / QK_K * sizeof(block_q5_K));
	dequantize_row_q5_K((block_q5_K *)out, y, N);
	write_file("q5_k.f32", y, sizeof y);
	quantize_row_q6_K_ref(x, (block_q6_K *)out, N);
	write_file("q6_k.bin", out, N / QK_K * sizeof(block_q6_K));
	dequantize_row_q6_K((block_q6_K *)out, y, N);
	write_file("q6_k.f32", y, sizeof y);
	quantize_row_q5_0_ref(x, (block_q5_0 *)out, N);
	write_file("q5_0.bin", out, N / QK5_0 * sizeof(block_q5_0));
	dequantize_row_q5_0((block_q5_0 *)out, y, N);
	write_file("q5_0.f32", y, sizeof y);
	quantize_row_q5_1_ref(x, (block_q5_1 *)out, N);
	write_file("q5_1.bin", out, N / QK5_1 * sizeof(block_q5_1));
	dequantize_row_q5_1((block_q5_1 *)out, y, N);
	write_file("q5_1.f32", y, sizeof y);
	return 0;
}
