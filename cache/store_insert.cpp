// Writing objects: the insert handle (step 2 of the life cycle in store.cpp). Its commit is
// a batch of one (store_commit.cpp).
#include "cache/store_insert.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "cache/body_checksum.hpp"
#include "cache/store.hpp"
#include "cache/store_state.hpp"

namespace storecache::cache {

insert_handle::insert_handle(std::shared_ptr<detail::store_state> state, std::string primary,
                             std::string variant, std::optional<std::uint64_t> declared)
    : state_(std::move(state)),
      primary_(std::move(primary)),
      variant_(std::move(variant)),
      declared_(declared),
      id_(state_->new_id()) {}

insert_handle::insert_handle() = default;
insert_handle::insert_handle(insert_handle&&) noexcept = default;

insert_handle& insert_handle::operator=(insert_handle&& o) noexcept {
  if (this != &o) {
    abandon();
    state_ = std::move(o.state_);
    primary_ = std::move(o.primary_);
    variant_ = std::move(o.variant_);
    declared_ = o.declared_;
    size_ = o.size_;
    crc_ = o.crc_;
    oversize_ = o.oversize_;
    buffer_ = std::move(o.buffer_);
    id_ = o.id_;
    file_ = std::move(o.file_);
  }
  return *this;
}

insert_handle::~insert_handle() {
  abandon();
}

void insert_handle::abandon() noexcept {
  if (!state_) return;
  if (file_) {
    file_->reset();
    ::unlink(state_->layout.temp_path(id_).c_str());
  }
  file_.reset();
  buffer_.clear();
  buffer_.shrink_to_fit();
  state_.reset();
}

error_code insert_handle::fail(error_code ec) {
  if (state_ && ec != store_errc::too_big && ec != store_errc::size_mismatch)
    ++(is_no_space(ec) ? state_->no_space : state_->insert_failures);
  abandon();
  return ec;
}

error_code insert_handle::spill_to_file() {
  const auto path = state_->layout.temp_path(id_);
  detail::unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (!fd) return detail::last_error();
  file_ = std::make_unique<detail::unique_fd>(std::move(fd));
  if (auto ec = detail::write_all(file_->get(), buffer_)) return ec;
  buffer_.clear();
  buffer_.shrink_to_fit();
  return {};
}

int insert_handle::open_reader() const {
  if (!state_ || !file_) return -1;
  return ::open(state_->layout.temp_path(id_).c_str(), O_RDONLY | O_CLOEXEC);
}

error_code insert_handle::append(std::string_view bytes) {
  if (!state_) return store_errc::finished;
  if (declared_ && size_ + bytes.size() > *declared_) return fail(store_errc::size_mismatch);
  if (!oversize_ && bytes.size() > state_->opts.max_object_size - size_) {
    // Too big to keep, but readers of a collapsed fetch may be reading this very file:
    // go on writing it; commit() refuses and removes it.
    ++state_->too_big;
    oversize_ = true;
  }
  crc_ = crc32c_update(crc_, bytes);
  size_ += bytes.size();
  if (!file_ && !oversize_ && size_ <= state_->opts.inline_max) {
    buffer_.append(bytes);
    return {};
  }
  if (!file_) {
    if (auto ec = spill_to_file()) return fail(ec);
  }
  if (auto ec = detail::write_all(file_->get(), bytes)) return fail(ec);
  return {};
}

error_code insert_handle::commit(const stored_head& head) {
  if (!state_) return store_errc::finished;
  const auto s = state_;
  pending_commit one{std::move(*this), head, {}};
  s->commit_batch({&one, 1});
  return one.result;
}

}  // namespace storecache::cache
