// The weighted fold of FedAvg-family rounds as a Node-API addon: the same
// IEEE float32 operations as the WebAssembly kernels and the JavaScript loop of
// libs/aggregation/src/fold (so the same bits), but reading each update where
// it lies (no copy into a WebAssembly memory), writing sums that are not read
// again soon with non-temporal stores (no read-for-ownership of the line), and
// asking for transparent huge pages for the sums and the result (a fresh 40 MB
// result takes 10,000 first-touch page faults on 4 KiB pages, 20 on 2 MiB ones).
//
//   fold(dst, src, offset, x, weight) -> bool
//       dst[offset + i] = fl32(src[offset + i] + fl32(weight * x[i])), or, with
//       src null, dst[offset + i] = fl32(weight * x[i]); true when a new value
//       may not be finite (the caller then looks at the values themselves)
//   check(src, offset, x, weight) -> bool
//       the same values as fold and the same answer, written nowhere (a
//       pass that checks an update before an in-place fold takes it)
//   mean(dst, src, total)
//       dst[i] = fl32(src[i] / total): in float32 when total is a whole number
//       up to 2^24 (exact in float32), else in float64 and rounded once (the
//       two agree wherever both apply)
//   hugePages(buffer) -> offset
//       advises the 2 MiB-aligned part of a fresh ArrayBuffer (not touched
//       yet) for transparent huge pages, and returns the byte offset of its
//       first 2 MiB boundary (0 when no whole huge page fits): callers allocate
//       2 MiB more and start their arrays there
//
// Built by build.js next to this file (g++, Node's headers) into
// dist/native/fold.node; native-fold.ts loads it, or falls back to the
// WebAssembly kernels when it is not there.
#include <node_api.h>

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

bool Throw(napi_env env, const char* message) {
  napi_throw_type_error(env, nullptr, message);
  return false;
}

bool Float32Array(napi_env env, napi_value value, float** data, size_t* length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return false;
  napi_typedarray_type type;
  void* raw = nullptr;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_float32_array) return false;
  *data = static_cast<float*>(raw);
  return true;
}

bool IsNull(napi_env env, napi_value value) {
  napi_valuetype t;
  return napi_typeof(env, value, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

bool Number(napi_env env, napi_value value, double* out) {
  return napi_get_value_double(env, value, out) == napi_ok;
}

// Scalar steps: the same operations as the vector loop, for heads and tails.
inline float Step(const float* src, const float* x, size_t i, float w) {
  const float t = w * x[i];
  return src ? src[i] + t : t;
}

// Values i to n one by one, stored when dst is given; whether one of them is not finite.
bool Tail(float* dst, const float* src, const float* x, size_t i, size_t n, float w) {
  float poison = 0.0f;  // s - s is 0 for finite s, NaN otherwise
  for (; i < n; ++i) {
    const float s = Step(src, x, i, w);
    if (dst) dst[i] = s;
    poison += s - s;
  }
  return poison != 0.0f || std::isnan(poison);
}

#if defined(__SSE2__)
// Whether any bit of v is set (any lane other than +0).
inline bool AnyBits(__m128 v) {
  return _mm_movemask_epi8(_mm_cmpeq_epi32(_mm_castps_si128(v), _mm_setzero_si128())) != 0xFFFF;
}
#endif

// dst[i] = src[i] + w * x[i] (or w * x[i]) for i in [0, n); returns whether a new value may not be finite.
bool FoldRange(float* dst, const float* src, const float* x, size_t n, float w) {
  size_t i = 0;
#if defined(__SSE2__)
  // Value by value until dst is 16-byte aligned (non-temporal stores need it).
  const size_t head = std::min(n, static_cast<size_t>((16 - (reinterpret_cast<uintptr_t>(dst) & 15)) & 15) / 4);
  bool suspect = Tail(dst, src, x, 0, head, w);
  i = head;
  const __m128 wv = _mm_set1_ps(w);
  __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps(), acc2 = _mm_setzero_ps(), acc3 = _mm_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    __m128 a = _mm_mul_ps(_mm_loadu_ps(x + i), wv);
    __m128 b = _mm_mul_ps(_mm_loadu_ps(x + i + 4), wv);
    __m128 c = _mm_mul_ps(_mm_loadu_ps(x + i + 8), wv);
    __m128 d = _mm_mul_ps(_mm_loadu_ps(x + i + 12), wv);
    if (src) {
      a = _mm_add_ps(_mm_loadu_ps(src + i), a);
      b = _mm_add_ps(_mm_loadu_ps(src + i + 4), b);
      c = _mm_add_ps(_mm_loadu_ps(src + i + 8), c);
      d = _mm_add_ps(_mm_loadu_ps(src + i + 12), d);
    }
    _mm_stream_ps(dst + i, a);
    _mm_stream_ps(dst + i + 4, b);
    _mm_stream_ps(dst + i + 8, c);
    _mm_stream_ps(dst + i + 12, d);
    // NaN and infinities stick in the running sums; finite values overflow them only very rarely (the caller then checks the values).
    acc0 = _mm_add_ps(acc0, a);
    acc1 = _mm_add_ps(acc1, b);
    acc2 = _mm_add_ps(acc2, c);
    acc3 = _mm_add_ps(acc3, d);
  }
  _mm_sfence();  // the stores are visible before the caller reads dst
  const __m128 acc = _mm_add_ps(_mm_add_ps(acc0, acc1), _mm_add_ps(acc2, acc3));
  // acc - acc is +0 in every lane exactly when acc is finite.
  suspect = AnyBits(_mm_sub_ps(acc, acc)) || suspect;
#else
  const bool suspect = false;
#endif
  return Tail(dst, src, x, i, n, w) || suspect;
}

// Whether some fl32(src[i] + fl32(w * x[i])) (or fl32(w * x[i])) may not be finite, writing nothing: the same running check as FoldRange.
bool CheckRange(const float* src, const float* x, size_t n, float w) {
  size_t i = 0;
  bool suspect = false;
#if defined(__SSE2__)
  const __m128 wv = _mm_set1_ps(w);
  __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    __m128 a = _mm_mul_ps(_mm_loadu_ps(x + i), wv);
    __m128 b = _mm_mul_ps(_mm_loadu_ps(x + i + 4), wv);
    if (src) {
      a = _mm_add_ps(_mm_loadu_ps(src + i), a);
      b = _mm_add_ps(_mm_loadu_ps(src + i + 4), b);
    }
    acc0 = _mm_add_ps(acc0, _mm_sub_ps(a, a));
    acc1 = _mm_add_ps(acc1, _mm_sub_ps(b, b));
  }
  suspect = AnyBits(_mm_add_ps(acc0, acc1));
#endif
  return Tail(nullptr, src, x, i, n, w) || suspect;
}

void MeanRange(float* dst, const float* src, size_t n, double total) {
  const bool exact32 = total == std::floor(total) && total >= 1 && total <= 16777216.0;
  if (exact32) {
    const float t = static_cast<float>(total);
    size_t i = 0;
#if defined(__SSE2__)
    while (i < n && (reinterpret_cast<uintptr_t>(dst + i) & 15) != 0) {
      dst[i] = src[i] / t;
      ++i;
    }
    const __m128 tv = _mm_set1_ps(t);
    for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_div_ps(_mm_loadu_ps(src + i), tv));
    _mm_sfence();
#endif
    for (; i < n; ++i) dst[i] = src[i] / t;
    return;
  }
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(static_cast<double>(src[i]) / total);
}

// The arguments fold and check share: (src, offset, x, weight), src null for the first term.
struct Operands {
  const float* src = nullptr;
  size_t src_len = 0;
  size_t at = 0;
  const float* x = nullptr;
  size_t x_len = 0;
  float weight = 0;
};

bool ReadOperands(napi_env env, const napi_value* argv, const char* fn, Operands* out) {
  char message[96];
  const auto fail = [&](const char* what) {
    snprintf(message, sizeof message, "%s: %s", fn, what);
    return Throw(env, message);
  };
  float* src = nullptr;
  if (!IsNull(env, argv[0]) && !Float32Array(env, argv[0], &src, &out->src_len)) return fail("src must be a Float32Array or null");
  out->src = src;
  double offset, weight;
  if (!Number(env, argv[1], &offset) || offset < 0 || offset != std::floor(offset)) return fail("offset must be a whole number >= 0");
  float* x;
  if (!Float32Array(env, argv[2], &x, &out->x_len)) return fail("x must be a Float32Array");
  out->x = x;
  if (!Number(env, argv[3], &weight)) return fail("weight must be a number");
  out->at = static_cast<size_t>(offset);
  out->weight = static_cast<float>(weight);
  if (src && (out->at > out->src_len || out->x_len > out->src_len - out->at)) return fail("offset + x.length lies beyond src");
  return true;
}

napi_value Boolean(napi_env env, bool value) {
  napi_value out;
  napi_get_boolean(env, value, &out);
  return out;
}

napi_value Fold(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 5) {
    return Throw(env, "fold(dst, src, offset, x, weight) takes 5 arguments"), nullptr;
  }
  float* dst;
  size_t dst_len;
  if (!Float32Array(env, argv[0], &dst, &dst_len)) return Throw(env, "fold: dst must be a Float32Array"), nullptr;
  Operands o;
  if (!ReadOperands(env, argv + 1, "fold", &o)) return nullptr;
  if (o.at > dst_len || o.x_len > dst_len - o.at) return Throw(env, "fold: offset + x.length lies beyond dst"), nullptr;
  return Boolean(env, FoldRange(dst + o.at, o.src ? o.src + o.at : nullptr, o.x, o.x_len, o.weight));
}

napi_value Check(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 4) {
    return Throw(env, "check(src, offset, x, weight) takes 4 arguments"), nullptr;
  }
  Operands o;
  if (!ReadOperands(env, argv, "check", &o)) return nullptr;
  return Boolean(env, CheckRange(o.src ? o.src + o.at : nullptr, o.x, o.x_len, o.weight));
}

napi_value Mean(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 3) {
    return Throw(env, "mean(dst, src, total) takes 3 arguments"), nullptr;
  }
  float *dst, *src;
  size_t dst_len, src_len;
  double total;
  if (!Float32Array(env, argv[0], &dst, &dst_len) || !Float32Array(env, argv[1], &src, &src_len)) {
    return Throw(env, "mean: dst and src must be Float32Arrays"), nullptr;
  }
  if (dst_len != src_len) return Throw(env, "mean: dst and src differ in length"), nullptr;
  if (!Number(env, argv[2], &total) || !(total > 0) || !std::isfinite(total)) return Throw(env, "mean: total must be a finite number > 0"), nullptr;
  MeanRange(dst, src, dst_len, total);
  return nullptr;
}

napi_value HugePages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void* data = nullptr;
  size_t length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 1 ||
      napi_get_arraybuffer_info(env, argv[0], &data, &length) != napi_ok) {
    return Throw(env, "hugePages(buffer) takes an ArrayBuffer"), nullptr;
  }
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  double offset = 0;
  if (first + kHugePage <= begin + length) {
    offset = static_cast<double>(first - begin);
#if defined(MADV_HUGEPAGE)
    const uintptr_t last = (begin + length) & ~(kHugePage - 1);
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // advice only: 4 KiB pages where huge ones are off
#endif
  }
  napi_value out;
  napi_create_double(env, offset, &out);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"fold", nullptr, Fold, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"check", nullptr, Check, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"mean", nullptr, Mean, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"hugePages", nullptr, HugePages, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
