#pragma once
// TensorRecord: one tensor as a checkpoint stores it, before any Tensor type exists: its name,
// dtype, shape, strides and storage offset (in elements, like torch), the whole storage it views
// (a checked span into a mapped file or an owned buffer) and a shared keep-alive of that memory.
// copy_to() converts the elements, honouring strides, into a caller's contiguous buffer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/core/half.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/io/checked_size.hpp"
#include "fiber/io/mapped_file.hpp"

namespace fiber::io {

// Deepest tensor any reader accepts (torch's own limit is 64 dimensions too).
inline constexpr std::size_t max_tensor_rank = 64;

// What is known about a tensor without touching its data.
struct TensorInfo {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> strides;  // in elements, one per dimension
  std::int64_t storage_offset = 0;    // in elements

  std::size_t rank() const { return shape.size(); }
  // Element count. Readers check shapes when they build an info, so this cannot overflow.
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
  }
  std::uint64_t nbytes() const { return std::uint64_t(numel()) * dtype_size(dtype); }
  // Row-major with no gaps (dimensions of size 1 may have any stride).
  bool is_contiguous() const {
    std::int64_t expected = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
      if (shape[i] == 1) continue;
      if (strides[i] != expected) return false;
      expected *= shape[i];
    }
    return true;
  }
};

// Row-major strides for `shape`.
inline std::vector<std::int64_t> contiguous_strides(std::span<const std::int64_t> shape) {
  std::vector<std::int64_t> strides(shape.size());
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  return strides;
}

// Checks that the view `info` lies inside a storage of `storage_bytes` bytes: rank, dimensions
// and strides non-negative, sizes without overflow, last element inside the storage. The
// message names `where` (the file) and the tensor.
inline void check_view(const TensorInfo& info, std::uint64_t storage_bytes, std::string_view where) {
  const std::string field = "tensor '" + excerpt(info.name) + "'";
  FIBER_CHECK(info.shape.size() <= max_tensor_rank, where, ": ", field, ": rank ", info.shape.size(),
              " exceeds the limit of ", max_tensor_rank);
  FIBER_CHECK(info.strides.size() == info.shape.size(), where, ": ", field, ": ", info.strides.size(),
              " strides for ", info.shape.size(), " dimensions");
  const std::int64_t numel = checked_numel(info.shape, where, field + " shape");
  checked_mul(std::uint64_t(numel), dtype_size(info.dtype), where, field + " byte size");
  FIBER_CHECK(info.storage_offset >= 0, where, ": ", field, ": storage offset ", info.storage_offset,
              " is negative");
  const std::uint64_t storage_elements = storage_bytes / dtype_size(info.dtype);
  if (numel == 0) {
    FIBER_CHECK(std::uint64_t(info.storage_offset) <= storage_elements, where, ": ", field,
                ": storage offset ", info.storage_offset, " is past the end of its storage (",
                storage_elements, " elements)");
    return;
  }
  // Largest element index the view touches: offset + sum((size - 1) * stride).
  std::uint64_t last = std::uint64_t(info.storage_offset);
  for (std::size_t i = 0; i < info.shape.size(); ++i) {
    FIBER_CHECK(info.strides[i] >= 0, where, ": ", field, ": stride ", info.strides[i], " of dimension ", i,
                " is negative");
    const std::uint64_t span = checked_mul(std::uint64_t(info.shape[i] - 1), std::uint64_t(info.strides[i]),
                                           where, field + " strides");
    last = checked_add(last, span, where, field + " strides");
  }
  FIBER_CHECK(last < storage_elements, where, ": ", field, ": view (offset ", info.storage_offset,
              ", last element ", last, ") runs past the end of its storage (", storage_elements, " ",
              dtype_name(info.dtype), " elements, ", storage_bytes, " bytes)");
}

// Whether copy_to() converts `from` into `to`: floating types into each other (rounding to
// nearest even), integers and bool into floating and wider-or-narrower integers (values checked
// against the target range), bool only from bool. Floating to integer is refused.
constexpr bool is_convertible(DType from, DType to) {
  if (from == to) return true;
  if (to == DType::boolean) return false;
  if (is_floating(from)) return is_floating(to);
  return true;
}

namespace record_detail {

template <DType D> struct stored;
template <> struct stored<DType::f32> { using type = float; };
template <> struct stored<DType::f64> { using type = double; };
template <> struct stored<DType::f16> { using type = std::uint16_t; };
template <> struct stored<DType::bf16> { using type = std::uint16_t; };
template <> struct stored<DType::i64> { using type = std::int64_t; };
template <> struct stored<DType::i32> { using type = std::int32_t; };
template <> struct stored<DType::i16> { using type = std::int16_t; };
template <> struct stored<DType::i8> { using type = std::int8_t; };
template <> struct stored<DType::u8> { using type = std::uint8_t; };
// Bool is read as a byte: a file may hold values other than 0 and 1.
template <> struct stored<DType::boolean> { using type = std::uint8_t; };

template <DType D> using stored_t = typename stored<D>::type;

template <class F>
decltype(auto) visit_dtype(DType t, F&& f) {
  switch (t) {
    case DType::f32: return f(std::integral_constant<DType, DType::f32>{});
    case DType::f64: return f(std::integral_constant<DType, DType::f64>{});
    case DType::f16: return f(std::integral_constant<DType, DType::f16>{});
    case DType::bf16: return f(std::integral_constant<DType, DType::bf16>{});
    case DType::i64: return f(std::integral_constant<DType, DType::i64>{});
    case DType::i32: return f(std::integral_constant<DType, DType::i32>{});
    case DType::i16: return f(std::integral_constant<DType, DType::i16>{});
    case DType::i8: return f(std::integral_constant<DType, DType::i8>{});
    case DType::u8: return f(std::integral_constant<DType, DType::u8>{});
    case DType::boolean: return f(std::integral_constant<DType, DType::boolean>{});
  }
  fail("unknown dtype value ", int(t));
}

template <DType D>
stored_t<D> load(const std::byte* p) {
  stored_t<D> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
void store(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

// The source element as float (exact for f16/bf16/f32), as double (f64, integers), or int64.
template <DType From>
auto widen(const std::byte* p) {
  if constexpr (From == DType::f16) return half_bits_to_float(load<From>(p));
  else if constexpr (From == DType::bf16) return bfloat16_bits_to_float(load<From>(p));
  else if constexpr (From == DType::boolean) return std::int64_t(load<From>(p) != 0);
  else if constexpr (From == DType::f32 || From == DType::f64) return load<From>(p);
  else return std::int64_t(load<From>(p));
}

// Converts n elements from a strided source run into a contiguous destination. Returns false
// (and the offending value) when an integer does not fit the target type.
template <DType From, DType To>
bool convert_run(const std::byte* src, std::int64_t src_step, std::byte* dst, std::int64_t n,
                 std::int64_t& bad_value) {
  constexpr std::size_t out_size = dtype_size(To);
  if constexpr (From == To && From != DType::boolean) {
    if (src_step == std::int64_t(out_size)) {
      std::memcpy(dst, src, std::size_t(n) * out_size);
      return true;
    }
    for (std::int64_t i = 0; i < n; ++i) std::memcpy(dst + i * out_size, src + i * src_step, out_size);
    return true;
  } else {
    for (std::int64_t i = 0; i < n; ++i, src += src_step, dst += out_size) {
      const auto v = widen<From>(src);
      using V = std::remove_cv_t<decltype(v)>;
      if constexpr (To == DType::f32) store(dst, static_cast<float>(v));
      else if constexpr (To == DType::f64) store(dst, static_cast<double>(v));
      else if constexpr (To == DType::f16) {
        if constexpr (std::is_same_v<V, float>) store(dst, float_to_half_bits(v));
        else store(dst, double_to_half_bits(static_cast<double>(v)));
      } else if constexpr (To == DType::bf16) {
        if constexpr (std::is_same_v<V, float>) store(dst, float_to_bfloat16_bits(v));
        else store(dst, double_to_bfloat16_bits(static_cast<double>(v)));
      } else if constexpr (std::is_same_v<V, std::int64_t>) {  // integer or bool target
        using Out = stored_t<To>;
        if constexpr (To == DType::boolean) {
          store(dst, std::uint8_t(v != 0));
        } else {
          if (v < std::int64_t(std::numeric_limits<Out>::min()) ||
              (std::uint64_t(v) > std::uint64_t(std::numeric_limits<Out>::max()) && v >= 0)) {
            bad_value = v;
            return false;
          }
          store(dst, static_cast<Out>(v));
        }
      } else {
        return false;  // floating to integer: excluded by is_convertible before we get here
      }
    }
    return true;
  }
}

// Dimensions after dropping size-1 dimensions and merging ones that are contiguous with each
// other; the last one is the innermost run. Never empty.
struct RunGeometry {
  std::vector<std::int64_t> sizes, strides;
};
inline RunGeometry collapse(const TensorInfo& t) {
  RunGeometry g;
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    if (t.shape[i] == 1) continue;
    if (!g.sizes.empty() && g.strides.back() == t.strides[i] * t.shape[i]) {
      g.sizes.back() *= t.shape[i];
      g.strides.back() = t.strides[i];
    } else {
      g.sizes.push_back(t.shape[i]);
      g.strides.push_back(t.strides[i]);
    }
  }
  if (g.sizes.empty()) {
    g.sizes.push_back(1);
    g.strides.push_back(1);
  }
  return g;
}

}  // namespace record_detail

struct TensorRecord : TensorInfo {
  std::span<const std::byte> storage;      // the whole storage the view indexes into
  std::shared_ptr<const void> keep_alive;  // keeps `storage` valid (mapping or buffer)
  std::string source;                      // the file, for messages
  std::shared_ptr<const MappedFile> mapping;  // set when `storage` lies in a file mapping

  // Checks the view against the storage (readers do this before handing a record out).
  void validate() const { check_view(*this, storage.size(), source); }

  // Whether the first element's address suits the dtype, so a caller may use the bytes in place.
  bool is_aligned() const {
    const auto address = reinterpret_cast<std::uintptr_t>(storage.data()) +
                         std::uintptr_t(storage_offset) * dtype_size(dtype);
    return address % dtype_size(dtype) == 0;
  }

  // The elements' bytes in place: zero-copy, for a contiguous view only.
  std::span<const std::byte> contiguous_bytes() const {
    FIBER_CHECK(is_contiguous(), source, ": tensor '", excerpt(name), "' is not contiguous; use copy_to()");
    validate();
    return storage.subspan(std::size_t(storage_offset) * dtype_size(dtype), nbytes());
  }

  // The elements as `const T*` in place when that is possible without a copy (dtype matches,
  // contiguous, aligned); nullptr otherwise.
  template <class T>
  const T* data_if_in_place() const {
    validate();  // before is_contiguous() reads the strides
    if (dtype_of_v<T> != dtype || !is_contiguous() || !is_aligned()) return nullptr;
    return reinterpret_cast<const T*>(contiguous_bytes().data());
  }

  // Writes elements [first, first + n) of the tensor, in row-major order, converted to `to`,
  // into `out` (n = out.size() / dtype_size(to)). Large copies are spread over the thread pool.
  void copy_to(DType to, std::span<std::byte> out, std::int64_t first = 0) const {
    validate();
    FIBER_CHECK(is_convertible(dtype, to), source, ": tensor '", excerpt(name), "': cannot convert ", dtype_name(dtype),
                " to ", dtype_name(to), " (floating to integer or anything but bool to bool)");
    const std::size_t out_size = dtype_size(to);
    FIBER_CHECK(out.size() % out_size == 0, source, ": tensor '", excerpt(name), "': output buffer of ", out.size(),
                " bytes is not a whole number of ", dtype_name(to), " elements");
    const std::int64_t n = std::int64_t(out.size() / out_size);
    FIBER_CHECK(first >= 0 && first <= numel() && n <= numel() - first, source, ": tensor '", excerpt(name),
                "': elements [", first, ", ", first, " + ", n, ") are outside its ", numel(), " elements");
    constexpr std::int64_t grain = std::int64_t(1) << 20;
    if (n >= 4 * grain && !in_parallel_region()) {
      parallel_for(0, n, grain, [&](std::int64_t b, std::int64_t e) {
        copy_range(to, out.data() + std::size_t(b) * out_size, first + b, e - b);
      });
      return;
    }
    copy_range(to, out.data(), first, n);
  }

  // copy_to into a typed buffer; T is any element type (float, double, Half, int64_t, ...).
  template <class T>
  void copy_to(std::span<T> out, std::int64_t first = 0) const {
    copy_to(dtype_of_v<T>, std::as_writable_bytes(out), first);
  }

  // All elements, converted to T, in row-major order.
  template <class T>
  std::vector<T> to_vector() const {
    static_assert(!std::is_same_v<T, bool>, "use to_vector<std::uint8_t>() for bool tensors");
    validate();
    std::vector<T> out;
    try {  // a stride-0 view may describe far more elements than its file holds
      out.resize(static_cast<std::size_t>(numel()));
    } catch (const std::bad_alloc&) {
      fail(source, ": tensor '", excerpt(name), "': cannot allocate ", numel(), " elements");
    } catch (const std::length_error&) {
      fail(source, ": tensor '", excerpt(name), "': cannot allocate ", numel(), " elements");
    }
    copy_to(std::span<T>(out));
    return out;
  }

 private:
  void copy_range(DType to, std::byte* dst, std::int64_t first, std::int64_t n) const {
    if (n == 0) return;
    // Contiguous, same dtype, from a file: pread() copies from the page cache without faulting
    // the pages into this process (cheaper for data read once, and no resident file pages).
    constexpr std::size_t pread_min = std::size_t(256) << 10;
    if (mapping && to == dtype && is_contiguous() && std::size_t(n) * dtype_size(to) >= pread_min) {
      const auto bytes = storage.subspan(std::size_t(storage_offset + first) * dtype_size(to), std::size_t(n) * dtype_size(to));
      if (mapping->read(bytes, dst)) return;
    }
    const record_detail::RunGeometry g = record_detail::collapse(*this);
    const std::size_t dims = g.sizes.size();
    const std::int64_t inner = g.sizes.back();
    const std::size_t in_size = dtype_size(dtype), out_size = dtype_size(to);
    const std::int64_t step = g.strides.back() * std::int64_t(in_size);
    // Position of element `first`: outer multi-index and offset inside the innermost run.
    std::vector<std::int64_t> index(dims, 0);
    std::int64_t rest = first / inner, j = first % inner;
    for (std::size_t d = dims - 1; d-- > 0;) {
      index[d] = rest % g.sizes[d];
      rest /= g.sizes[d];
    }
    std::int64_t bad = 0;
    record_detail::visit_dtype(dtype, [&](auto from) {
      record_detail::visit_dtype(to, [&](auto target) {
        constexpr DType From = decltype(from)::value, To = decltype(target)::value;
        if constexpr (is_convertible(From, To)) {
          while (n > 0) {
            std::int64_t element = storage_offset + j * g.strides.back();
            for (std::size_t d = 0; d + 1 < dims; ++d) element += index[d] * g.strides[d];
            const std::int64_t count = std::min(n, inner - j);
            if (!record_detail::convert_run<From, To>(storage.data() + std::size_t(element) * in_size, step, dst,
                                                      count, bad))
              fail(source, ": tensor '", excerpt(name), "': value ", bad, " does not fit in ", dtype_name(To));
            dst += std::size_t(count) * out_size;
            n -= count;
            j = 0;
            for (std::size_t d = dims - 1; d-- > 0;) {  // odometer over the outer dimensions
              if (++index[d] < g.sizes[d]) break;
              index[d] = 0;
            }
          }
        }
      });
    });
  }
};

}  // namespace fiber::io
