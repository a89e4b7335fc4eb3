/* tokenizer_sse2.c: common/tokenizer.c built again with its 32-byte AVX2
 * path left out (CW_TOKENIZER_NO_AVX2), under other names, so that
 * test_tokenizer_simd checks the 16-byte SSE2 path too on a CPU where the
 * library's own cw_tokenize takes the AVX2 one. */
#define CW_TOKENIZER_NO_AVX2
#define cw_tokenize cw_tokenize_sse2
#define cw_tokens_init cw_tokens_init_sse2
#define cw_tokens_free cw_tokens_free_sse2
#include "../../common/tokenizer.c"
