#pragma once
// Checkpoint: the tensors of one weight file, by name, read lazily. Opening a file reads only its
// index (a safetensors header, or a torch zip's directory and pickle); record(name) maps or
// inflates that one tensor's storage. Formats: safetensors.hpp and torch_checkpoint.hpp; pick
// one by content with open_checkpoint() (open_checkpoint.hpp).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/io/byte_source.hpp"
#include "fiber/io/mapped_file.hpp"
#include "fiber/io/tensor_record.hpp"
#include "fiber/io/unpickler.hpp"
#include "fiber/io/zip_archive.hpp"

namespace fiber::io {

enum class CheckpointFormat { safetensors, torch_zip };

constexpr std::string_view format_name(CheckpointFormat f) {
  return f == CheckpointFormat::safetensors ? "safetensors" : "pytorch-zip";
}

// Which part of a torch checkpoint is "the state dict".
enum class CheckpointLayout {
  safetensors,         // a safetensors file: all tensors
  state_dict,          // a bare state dict (torch.save(model.state_dict()))
  lightning,           // {"state_dict": ..., "optimizer_states": ..., ...}: names without the prefix
  maskrcnn_benchmark,  // {"model": ..., "optimizer": ...}: a "module." prefix is stripped
  everything,          // every tensor anywhere in the file, named by its full path
};

constexpr std::string_view layout_name(CheckpointLayout l) {
  switch (l) {
    case CheckpointLayout::safetensors: return "safetensors";
    case CheckpointLayout::state_dict: return "state_dict";
    case CheckpointLayout::lightning: return "lightning";
    case CheckpointLayout::maskrcnn_benchmark: return "maskrcnn_benchmark";
    case CheckpointLayout::everything: return "everything";
  }
  return "?";
}

// A part of a checkpoint fiber does not interpret: an object of a class outside the allowlist
// (optimizer or scheduler helpers, callback state, hyper-parameter containers, ...).
struct Placeholder {
  std::string path;  // where: "hyper_parameters", "lr_schedulers.0.milestones"
  std::string type;  // the global it comes from: "argparse.Namespace"
  std::string note;  // why it is opaque, when not simply an unknown class
};

struct OpenOptions {
  // Name every tensor of the file by its full path instead of extracting the state dict.
  bool everything = false;
  // The top-level key of a torch checkpoint that holds the state dict, e.g. "model_ema" (the EMA
  // weights a maskrcnn_benchmark trainer saves beside "model"). Empty: "state_dict" (Lightning),
  // else "model" (maskrcnn_benchmark), else the object itself. A chosen key other than
  // "state_dict" is read as maskrcnn_benchmark's ("module." stripped). Safetensors files have no
  // such keys: setting it for one is an error.
  std::string state_dict_key;
  // Check the CRC-32 of each torch storage when it is read (one more pass over its bytes, and
  // its pages mapped). Off by default, like torch.load; the pickle and the small entries are
  // always checked, and truncation or a damaged zip structure is caught either way.
  bool verify_checksums = false;
  ZipLimits zip;
  pickle::PickleLimits pickle;
  std::uint64_t max_header_bytes = std::uint64_t(100) << 20;  // safetensors JSON header
  std::uint64_t max_pickle_bytes = std::uint64_t(1) << 30;    // torch data.pkl
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

class Checkpoint {
 public:
  // How a format reads one tensor's storage.
  class Source {
   public:
    virtual ~Source() = default;
    virtual TensorRecord load(const TensorInfo& info, std::size_t index) const = 0;
  };

  // Unreadable state-dict entries: name -> why (naming the global), for a clear error.
  using Unreadable = std::vector<std::pair<std::string, std::string>>;

  Checkpoint(CheckpointFormat format, CheckpointLayout layout, std::string file, std::vector<TensorInfo> tensors,
             std::vector<Placeholder> placeholders, Unreadable unreadable, Metadata metadata,
             std::shared_ptr<const Source> source, std::shared_ptr<const MappedFile> mapping)
      : format_(format), layout_(layout), file_(std::move(file)), tensors_(std::move(tensors)),
        placeholders_(std::move(placeholders)), metadata_(std::move(metadata)), source_(std::move(source)),
        mapping_(std::move(mapping)) {
    names_.reserve(tensors_.size());
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      FIBER_CHECK(index_.emplace(tensors_[i].name, i).second, file_, ": tensor name '", excerpt(tensors_[i].name),
                  "' occurs twice");
      names_.push_back(tensors_[i].name);
    }
    for (const auto& [name, why] : unreadable) unreadable_.emplace(name, why);
    unreadable_list_ = std::move(unreadable);
  }

  CheckpointFormat format() const { return format_; }
  CheckpointLayout layout() const { return layout_; }
  const std::string& file() const { return file_; }

  // Tensor names in file order (state-dict order for torch files, data order for safetensors).
  const std::vector<std::string>& names() const { return names_; }
  std::size_t size() const { return tensors_.size(); }
  bool contains(std::string_view name) const { return index_.count(std::string(name)) != 0; }

  // Name, dtype, shape and strides, without reading data.
  const TensorInfo& info(std::string_view name) const { return tensors_[index_of(name)]; }
  const std::vector<TensorInfo>& infos() const { return tensors_; }

  // The tensor with its storage: a span into the mapped file when stored uncompressed, an
  // inflated buffer otherwise. Only this tensor's bytes are touched.
  TensorRecord record(std::string_view name) const {
    const std::size_t i = index_of(name);
    return source_->load(tensors_[i], i);
  }

  const std::vector<Placeholder>& placeholders() const { return placeholders_; }
  // State-dict entries that are not tensors fiber can read (complex or quantized tensors, objects
  // of unknown classes), in file order, with why: names() leaves them out, so a converter must
  // refuse them or say it drops them.
  const Unreadable& unreadable() const { return unreadable_list_; }
  // safetensors "__metadata__", or a torch archive's version entries.
  const Metadata& metadata() const { return metadata_; }

  // Drops the pages of a record read from this file out of the process's resident set (after
  // copying or writing it elsewhere); they are read again if touched. No-op for buffers.
  void release(const TensorRecord& record) const {
    if (mapping_) mapping_->release(record.storage);
  }

 private:
  std::size_t index_of(std::string_view name) const {
    auto it = index_.find(std::string(name));
    if (it != index_.end()) return it->second;
    auto bad = unreadable_.find(std::string(name));
    if (bad != unreadable_.end()) fail(file_, ": '", excerpt(name), "' cannot be read: ", bad->second);
    fail(file_, ": no tensor named '", excerpt(name), "' (", tensors_.size(), " tensors; `fiber inspect ", file_,
         "` lists them)");
  }

  CheckpointFormat format_;
  CheckpointLayout layout_;
  std::string file_;
  std::vector<TensorInfo> tensors_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::size_t> index_;
  std::vector<Placeholder> placeholders_;
  std::unordered_map<std::string, std::string> unreadable_;
  Unreadable unreadable_list_;
  Metadata metadata_;
  std::shared_ptr<const Source> source_;
  std::shared_ptr<const MappedFile> mapping_;
};

}  // namespace fiber::io
