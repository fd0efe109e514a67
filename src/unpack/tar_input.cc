// TarInput: the decoded stream handed to libarchive, optionally decoded
// ahead on a helper thread.

#include <cstring>
#include <system_error>

#include "common/log.h"
#include "unpack/decompress_internal.h"

namespace unpack::internal {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;

// The first block is this short: the extractor starts on the first
// entries while the rest of the block is inflated, instead of waiting for
// a whole block (for a small image, its whole layer).
constexpr size_t kFirstBlockBytes = 64u << 10;
// Enough for the decoder to stay a little ahead of the extractor; more
// only holds memory while a large file is being written.
constexpr size_t kThreadedBlocks = kDecodedBlocks;
// A tar ends with two zero blocks, GNU tar pads to its 10 KiB record; more
// than this after the end is not a tar writer's padding but a decompression
// bomb that would keep us inflating for nothing.
constexpr int64_t kMaxTrailingBytes = 16 << 20;

}  // namespace

TarInput::TarInput(ByteSource& decoded, const std::atomic<bool>* cancel, bool threaded)
    : decoded_(decoded),
      cancel_(cancel),
      threaded_(threaded),
      blocks_(threaded ? kThreadedBlocks : 1) {
  for (Block& b : blocks_) b.data.reset(new std::byte[kDecodedBlockBytes]);
  if (!threaded_) return;
  for (Block& b : blocks_) free_.push_back(&b);
  try {
    worker_ = std::thread([this] { Work(); });
  } catch (const std::system_error& e) {
    // No thread to be had (RLIMIT_NPROC, memory): decode inline instead.
    LOG(Warn) << "cannot start the decoder thread, decoding inline"
              << common::Kv("error", e.what());
    threaded_ = false;
  }
}

TarInput::~TarInput() { Stop(); }

void TarInput::Stop() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

bool TarInput::cancelled() const {
  return cancel_ != nullptr && cancel_->load(std::memory_order_relaxed);
}

Result<size_t> TarInput::Decode(Block& b) {
  if (cancelled()) return MakeError(Errc::kCancelled, "cancelled");
  std::span<std::byte> room = b.room();
  if (first_decode_) room = room.first(kFirstBlockBytes);
  first_decode_ = false;
  ASSIGN_OR_RETURN(size_t n, decoded_.Read(room));
  b.size = n;
  return n;
}

void TarInput::Work() {
  for (;;) {
    Block* b = nullptr;
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return stop_ || !free_.empty(); });
      if (stop_) return;
      b = free_.front();
      free_.pop_front();
    }
    auto n = Decode(*b);
    // The diffID is hashed here too: the caller's thread, which creates the
    // files, is the one the kernel keeps busy (small files are all system
    // calls), so everything else goes to this one.
    if (n && *n > 0) sha_.Update(b->filled());
    std::lock_guard l(mu_);
    if (!n || *n == 0) {
      if (!n) worker_error_ = std::move(n.error());
      free_.push_back(b);
      worker_done_ = true;
      cv_.notify_all();
      return;
    }
    full_.push_back(b);
    cv_.notify_all();
  }
}

// Threaded, the helper reads, hashes the compressed bytes, inflates and
// hashes the tar (the diffID); this thread only parses and writes files.
Result<TarInput::Block*> TarInput::Next() {
  ASSIGN_OR_RETURN(Block * b, NextBlock());
  if (b != nullptr && !threaded_) sha_.Update(b->filled());
  return b;
}

Result<TarInput::Block*> TarInput::NextBlock() {
  if (!threaded_) {
    ASSIGN_OR_RETURN(size_t n, Decode(blocks_[0]));
    current_ = n > 0 ? &blocks_[0] : nullptr;
    return current_;
  }
  if (cancelled()) return MakeError(Errc::kCancelled, "cancelled");
  std::unique_lock l(mu_);
  if (current_ != nullptr) {  // libarchive is done with it
    free_.push_back(current_);
    current_ = nullptr;
    cv_.notify_all();
  }
  cv_.wait(l, [&] { return !full_.empty() || worker_done_; });
  if (!full_.empty()) {
    current_ = full_.front();
    full_.pop_front();
    return current_;
  }
  if (worker_error_) return std::unexpected(*worker_error_);
  return nullptr;
}

Result<bool> TarInput::Prime() {
  ASSIGN_OR_RETURN(Block * b, Next());
  primed_ = b != nullptr;
  return primed_;
}

la_ssize_t TarInput::ReadCallback(archive* a, void* client, const void** buf) {
  auto* self = static_cast<TarInput*>(client);
  *buf = self->blocks_[0].data.get();
  if (self->primed_) {
    self->primed_ = false;
    *buf = self->current_->data.get();
    return static_cast<la_ssize_t>(self->current_->size);
  }
  if (self->error_) return -1;
  auto b = self->Next();
  if (!b) {
    archive_set_error(a, EIO, "%s", b.error().message.c_str());
    self->error_ = std::move(b.error());
    return -1;
  }
  if (*b == nullptr) return 0;
  *buf = (*b)->data.get();
  return static_cast<la_ssize_t>((*b)->size);
}

Status TarInput::Drain() {
  if (error_) return std::unexpected(*std::move(error_));
  int64_t trailing = 0;
  if (primed_) {
    primed_ = false;
    trailing += static_cast<int64_t>(current_->size);
  }
  for (;;) {
    ASSIGN_OR_RETURN(Block * b, Next());
    if (b == nullptr) break;
    trailing += static_cast<int64_t>(b->size);
    if (trailing > kMaxTrailingBytes)
      return MakeError(Errc::kDataLoss, "more than " + std::to_string(kMaxTrailingBytes >> 20) +
                                            " MiB of data after the end of the tar");
  }
  Stop();  // the worker has finished (its source reads included)
  return {};
}

std::optional<common::Error> TarInput::TakeError() {
  std::optional<common::Error> e = std::move(error_);
  error_.reset();
  return e;
}

}  // namespace unpack::internal
