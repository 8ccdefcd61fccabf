// The compacted idle connections of an HTTPServer (see squall/detail/idle_records.h).
#include "squall/detail/idle_records.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>

namespace squall::detail {

namespace {

constexpr size_t kSlabBytes = 64 * 1024;

}  // namespace

IdleRecords::IdleRecords(IOLoop& loop, Owner& owner, std::optional<Duration> idle_timeout)
    : loop_(loop), owner_(owner), idle_timeout_(idle_timeout) {}

IdleRecords::~IdleRecords() {
  loop_.remove_timeout(timer_);
  while (head_ != nullptr) {
    auto [fd, peer] = take(*head_);
    loop_.remove_handler(fd);
    ::close(fd);
  }
  for (void* slab : slabs_) ::munmap(slab, kSlabBytes);
}

size_t IdleRecords::record_bytes() { return sizeof(Record); }

bool IdleRecords::can_hold(const SocketAddress& peer) {
  return (peer.family() == AF_INET || peer.family() == AF_INET6) && peer.length() <= sizeof(sockaddr_in6);
}

void IdleRecords::Record::set_peer(const SocketAddress& peer) {
  address_length = peer.length();
  std::memcpy(&address, peer.get(), peer.length());
}

// ---- slabs --------------------------------------------------------------------------------

IdleRecords::Record* IdleRecords::allocate() {
  if (free_ == nullptr) {
    void* slab = ::mmap(nullptr, kSlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slab == MAP_FAILED) throw std::bad_alloc();
    slabs_.push_back(slab);
    // Threaded in address order, so that records fill a slab from its start.
    auto* records = static_cast<Record*>(slab);
    for (size_t i = kSlabBytes / sizeof(Record); i-- > 0;) {
      Record* free_record = new (&records[i]) Record;
      free_record->next = free_;
      free_ = free_record;
    }
  }
  Record* record = free_;
  free_ = record->next;
  record->records = this;
  record->prev = record->next = nullptr;
  return record;
}

void IdleRecords::release(Record* record) noexcept {
  record->fd = -1;
  record->next = free_;
  free_ = record;
  if (size_ == 0 && slabs_.size() > 1) {
    // The burst is over: keep one slab, give the others back.
    for (size_t i = 1; i < slabs_.size(); ++i) ::munmap(slabs_[i], kSlabBytes);
    slabs_.resize(1);
    free_ = nullptr;
    auto* records = static_cast<Record*>(slabs_.front());
    for (size_t i = kSlabBytes / sizeof(Record); i-- > 0;) {
      records[i].next = free_;
      free_ = &records[i];
    }
  }
}

// ---- the ordered list ---------------------------------------------------------------------

void IdleRecords::insert(Record* record) {
  // Usually the newest: appended. A connection compacted late (it held output at an
  // earlier sweep) walks back to its place, keeping the oldest first for the timer.
  Record* after = tail_;
  while (after != nullptr && after->idle_since > record->idle_since) after = after->prev;
  record->prev = after;
  record->next = after != nullptr ? after->next : head_;
  (record->next != nullptr ? record->next->prev : tail_) = record;
  (after != nullptr ? after->next : head_) = record;
  ++size_;
  arm_timer();
}

std::pair<int, SocketAddress> IdleRecords::take(Record& record) {
  (record.prev != nullptr ? record.prev->next : head_) = record.next;
  (record.next != nullptr ? record.next->prev : tail_) = record.prev;
  --size_;
  std::pair<int, SocketAddress> taken{record.fd, record.peer()};
  release(&record);
  return taken;
}

void IdleRecords::wake(Record& record, bool fin_received) {
  auto [fd, peer] = take(record);
  owner_.resume(fd, std::move(peer), fin_received);
}

size_t IdleRecords::close_all() {
  size_t closed = 0;
  while (head_ != nullptr) {
    auto [fd, peer] = take(*head_);
    owner_.close_compacted(fd, std::move(peer), false);
    ++closed;
  }
  return closed;
}

// ---- the idle timeout ---------------------------------------------------------------------

void IdleRecords::arm_timer() {
  if (!idle_timeout_ || head_ == nullptr) return;
  const TimePoint deadline = head_->idle_since + *idle_timeout_;
  if (timer_) {
    if (timer_deadline_ <= deadline) return;  // fires first, then re-arms for the oldest
    loop_.remove_timeout(timer_);
  }
  timer_deadline_ = deadline;
  timer_ = loop_.call_at(deadline, [this] {
    timer_ = {};
    expire();
  });
}

void IdleRecords::expire() {
  const TimePoint now = loop_.time();
  while (head_ != nullptr && head_->idle_since + *idle_timeout_ <= now) {
    auto [fd, peer] = take(*head_);
    owner_.close_compacted(fd, std::move(peer), true);
  }
  arm_timer();
}

}  // namespace squall::detail
