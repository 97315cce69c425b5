// logits MODEL.gguf LORA.gguf|- IDS_CSV OUT.bin [TEXT_FILE]
// Loads a GGUF model (and a LoRA adapter) with llama.cpp on the CPU, runs
// the ids as one batch, writes every position's logits (float32, row-major)
// to OUT.bin, and with TEXT_FILE prints llama.cpp's tokenization of it.
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char ** argv) {
    if (argc < 5) { fprintf(stderr, "usage\n"); return 2; }
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "LOAD FAILED %s\n", argv[1]); return 1; }
    auto cp = llama_context_default_params();
    cp.n_ctx = 256; cp.n_batch = 256; cp.n_ubatch = 256; cp.n_threads = 4; cp.n_threads_batch = 4;
    // float32 KV cache: the default f16 cache rounds K and V (about 0.01 on
    // these logits), which would hide how exactly the weights match.
    cp.type_k = GGML_TYPE_F32; cp.type_v = GGML_TYPE_F32;
    if (getenv("NO_FA")) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "CONTEXT FAILED\n"); return 1; }
    if (std::string(argv[2]) != "-") {
        llama_adapter_lora * ad = llama_adapter_lora_init(model, argv[2]);
        if (!ad) { fprintf(stderr, "LORA LOAD FAILED %s\n", argv[2]); return 1; }
        float scale = 1.0f;
        if (llama_set_adapters_lora(ctx, &ad, 1, &scale) != 0) { fprintf(stderr, "LORA SET FAILED\n"); return 1; }
    }
    std::vector<llama_token> ids;
    std::stringstream ss(argv[3]);
    for (std::string s; std::getline(ss, s, ',');) ids.push_back(atoi(s.c_str()));
    llama_batch b = llama_batch_init(ids.size(), 0, 1);
    for (size_t i = 0; i < ids.size(); i++) {
        b.token[i] = ids[i]; b.pos[i] = i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
    }
    b.n_tokens = ids.size();
    if (llama_decode(ctx, b) != 0) { fprintf(stderr, "DECODE FAILED\n"); return 1; }
    const int nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
    FILE * f = fopen(argv[4], "wb");
    for (size_t i = 0; i < ids.size(); i++) fwrite(llama_get_logits_ith(ctx, i), sizeof(float), nv, f);
    fclose(f);
    if (argc > 5) {
        std::ifstream in(argv[5]);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::vector<llama_token> t(text.size() + 8);
        int n = llama_tokenize(llama_model_get_vocab(model), text.data(), text.size(), t.data(), t.size(), false, true);
        printf("TOKENS");
        for (int i = 0; i < n; i++) printf(" %d", t[i]);
        printf("\n");
    }
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
