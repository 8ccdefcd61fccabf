// The compacted idle connections of an HTTPServer (issue 18: memory per idle connection).
//
// A keep-alive connection that waits for its next request holds an IOStream, an
// HTTP1Connection, an HTTPServerConnection, the suspended coroutines of its request loop
// and their buffers: some 4 KiB. Once it has been idle for a while the server swaps all
// that for a record of 80 bytes — the socket, the peer's address, since when it is idle —
// which the loop calls when bytes (or an EOF, an error) arrive (IOLoop::FdHandler; the
// socket stays registered, no system call). The owner then rebuilds the connection.
//
// Records come from slabs of their own (mmap), not from the heap the freed objects
// were in: a record left between them would keep their pages from going back to the
// system. The records are kept in the order their connections went idle, so one loop
// timer (for the oldest) enforces the idle timeout of all of them.
// Internal (squall/detail/): not API, it may change without notice.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "squall/ioloop.h"
#include "squall/netutil.h"

namespace squall::detail {

class IdleRecords {
 public:
  // Told what becomes of a record's connection. Each call hands over the socket, still
  // registered with the loop under the (already freed) record: the owner must give the
  // fd a handler (IOStream::TakeRegistration) or remove it from the loop and close it.
  class Owner {
   public:
    // Bytes, an EOF or an error arrived: serve the connection again. fin_received: the
    // event reported the peer's FIN (IOLoop::PEER_CLOSED), which the stream must know.
    virtual void resume(int fd, SocketAddress peer, bool fin_received) = 0;
    // The connection is closed: idle timeout (timed_out) or close_all().
    virtual void close_compacted(int fd, SocketAddress peer, bool timed_out) = 0;

   protected:
    ~Owner() = default;
  };

  // idle_timeout: a record idle that long (since idle_since) is closed.
  IdleRecords(IOLoop& loop, Owner& owner, std::optional<Duration> idle_timeout);
  // Removes the remaining records' sockets from the loop and closes them (the owner is
  // not told), cancels the timer, unmaps the slabs. The loop must still exist.
  ~IdleRecords();
  IdleRecords(const IdleRecords&) = delete;
  IdleRecords& operator=(const IdleRecords&) = delete;

  // Whether a record can hold this peer's address (IPv4 and IPv6 peers).
  static bool can_hold(const SocketAddress& peer);

  // Compacts a connection idle since idle_since: hand_over(FdHandler& record) must give
  // the socket to the record (HTTPServerConnection::hand_over_socket) and return its fd.
  // If it throws, no record is kept and the exception propagates.
  template <typename HandOver>
  void add(const SocketAddress& peer, TimePoint idle_since, HandOver&& hand_over) {
    Record* record = allocate();
    try {
      record->fd = hand_over(static_cast<IOLoop::FdHandler&>(*record));
    } catch (...) {
      release(record);
      throw;
    }
    record->set_peer(peer);
    record->idle_since = idle_since;
    insert(record);
  }

  // Closes every record (Owner::close_compacted, timed_out false); returns how many.
  size_t close_all();
  size_t size() const { return size_; }
  // What one record takes (in its slab).
  static size_t record_bytes();

 private:
  struct Record final : IOLoop::FdHandler {
    IdleRecords* records = nullptr;
    Record* prev = nullptr;
    Record* next = nullptr;  // also the free list's link
    TimePoint idle_since{};
    int fd = -1;
    socklen_t address_length = 0;
    sockaddr_in6 address{};  // or a sockaddr_in
    // The socket stays registered as its IOStream left it, edge-triggered for READ (and
    // WRITE, once a write had to wait): room to write alone is no reason to wake.
    void on_fd_events(int, uint32_t events) override {
      if (events != IOLoop::WRITE) records->wake(*this, (events & IOLoop::PEER_CLOSED) != 0);
    }
    void set_peer(const SocketAddress& peer);
    SocketAddress peer() const { return SocketAddress(reinterpret_cast<const sockaddr*>(&address), address_length); }
  };

  Record* allocate();
  void release(Record* record) noexcept;
  void insert(Record* record);
  // Unlinks and frees the record; returns its fd and peer.
  std::pair<int, SocketAddress> take(Record& record);
  void wake(Record& record, bool fin_received);
  void expire();
  void arm_timer();

  IOLoop& loop_;
  Owner& owner_;
  std::optional<Duration> idle_timeout_;
  // Records in the order their connections went idle (oldest first).
  Record* head_ = nullptr;
  Record* tail_ = nullptr;
  size_t size_ = 0;
  TimeoutHandle timer_;
  TimePoint timer_deadline_{};
  // Slabs (each kSlabBytes, mmap'd) and the free records in them.
  std::vector<void*> slabs_;
  Record* free_ = nullptr;
};

}  // namespace squall::detail
