// golden.c writes the goldens of TestKQuantsMatchLlamaCpp: input.f32
// quantized by ggml's reference quantizers (the ones llama-quantize runs
// without an importance matrix), one file per type (TYPE.bin), and those
// blocks expanded again by ggml's dequantizers (TYPE.f32); and those of
// TestWeightedQuantsMatchLlamaCpp: input.f32 as 2 rows of 1024 and
// weights.f32 as 8 rows of 1024 quantized by ggml's quantize_TYPE with
// importance.f32 as the importance matrix (what llama-quantize runs with an
// imatrix), one file per type and input (TYPE-imatrix.bin,
// TYPE-imatrix-weights.bin). The non-linear types (IQ4_NL, IQ4_XS) have no
// reference quantizer that llama-quantize runs: without an imatrix it calls
// quantize_TYPE with no importance (a full scale search, weights x²), which
// is what their TYPE.bin holds. Built against the
// ggml of llama.cpp that node-llama-cpp 3.22.1 bundles (see README.md),
// compiled without floating-point contraction:
//
//   gcc -O2 -ffp-contract=off -I$LLAMA/ggml/include -I$LLAMA/ggml/src golden.c \
//       $LLAMA/build/ggml/src/libggml-base.a -lstdc++ -lgomp -lm -lpthread -o golden && ./golden
#include <stdio.h>
#include <stdlib.h>
#include "ggml.h"
#include "ggml-quants.h"

enum { N = 2048, ROW = 1024, NW = 8 * ROW };

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

// WEIGHTED quantizes x (N / ROW rows of ROW values) as TYPE with the
// importance matrix imp into NAME-imatrix.bin, and w (NW / ROW rows) into
// NAME-imatrix-weights.bin.
#define WEIGHTED(TYPE, NAME) \
	do { \
		write_file(NAME "-imatrix.bin", out, quantize_##TYPE(x, out, N / ROW, ROW, imp)); \
		write_file(NAME "-imatrix-weights.bin", out, quantize_##TYPE(w, out, NW / ROW, ROW, imp)); \
	} while (0)

// NONLINEAR quantizes x (N / ROW rows of ROW values) as TYPE the way
// llama-quantize does without an importance matrix, quantize_TYPE with
// none (quantize_row_iq4_nl_ref would skip IQ4_NL's scale search), into
// NAME.bin and expands it into NAME.f32.
#define NONLINEAR(TYPE, NAME) \
	do { \
		write_file(NAME ".bin", out, quantize_##TYPE(x, out, N / ROW, ROW, NULL)); \
		dequantize_row_##TYPE((block_##TYPE *)out, y, N); \
		write_file(NAME ".f32", y, sizeof y); \
	} while (0)

static void read_file(const char *name, float *p, size_t n) {
	FILE *f = fopen(name, "rb");
	if (!f || fread(p, sizeof *p, n, f) != n) {
		perror(name);
		exit(1);
	}
	fclose(f);
}

int main(void) {
	static float x[N];
	static float imp[ROW];
	static float w[NW];
	static unsigned char out[NW]; // more than any type's N or NW values need
	static float y[N];
	read_file("input.f32", x, N);
	read_file("importance.f32", imp, ROW);
	read_file("weights.f32", w, NW);
	GOLDEN(q2_K, "q2_k", QK_K);
	GOLDEN(q3_K, "q3_k", QK_K);
	GOLDEN(q4_K, "q4_k", QK_K);
	GOLDEN(q5_K, "q5_k", QK_K);
	GOLDEN(q6_K, "q6_k", QK_K);
	GOLDEN(q4_1, "q4_1", QK4_1);
	GOLDEN(q5_0, "q5_0", QK5_0);
	GOLDEN(q5_1, "q5_1", QK5_1);
	NONLINEAR(iq4_nl, "iq4_nl");
	NONLINEAR(iq4_xs, "iq4_xs");
	WEIGHTED(q2_K, "q2_k");
	WEIGHTED(q3_K, "q3_k");
	WEIGHTED(q4_K, "q4_k");
	WEIGHTED(q5_K, "q5_k");
	WEIGHTED(q6_K, "q6_k");
	WEIGHTED(q4_0, "q4_0");
	WEIGHTED(q4_1, "q4_1");
	WEIGHTED(q5_0, "q5_0");
	WEIGHTED(q5_1, "q5_1");
	WEIGHTED(iq4_nl, "iq4_nl");
	WEIGHTED(iq4_xs, "iq4_xs");
	return 0;
}
