// What /proc/self tells tests about this process's descriptors: how many
// it has open (nothing leaks), which epoll sets watch a descriptor and for what.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace squall::testing_support {

// The entries of /proc/self/fd, less the directory stream used to list them.
inline int open_fd_count() {
  int n = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;
}

// Calls on_entry(events) for every epoll set of this process that watches `fd` (its
// /proc/self/fdinfo lists it as a "tfd", with the interest mask it was registered with).
template <typename OnEntry>
void for_each_epoll_entry(int fd, OnEntry on_entry) {
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    char target[64] = {};
    std::string link = std::string("/proc/self/fd/") + entry->d_name;
    if (::readlink(link.c_str(), target, sizeof target - 1) <= 0 || std::strcmp(target, "anon_inode:[eventpoll]") != 0) {
      continue;
    }
    std::ifstream info(std::string("/proc/self/fdinfo/") + entry->d_name);
    std::string line;
    while (std::getline(info, line)) {
      std::istringstream words(line);
      std::string key, events_key;
      int watched = -1;
      unsigned events = 0;
      if (words >> key >> watched && key == "tfd:" && watched == fd) {
        words >> events_key >> std::hex >> events;
        on_entry(events);
      }
    }
  }
  closedir(dir);
}

// How many of this process's epoll sets watch `fd`: shows whether a registration was
// taken out, by EPOLL_CTL_DEL or by close(2).
inline int epoll_watchers(int fd) {
  int n = 0;
  for_each_epoll_entry(fd, [&](unsigned) { ++n; });
  return n;
}

// The events `fd` is registered for (EPOLLIN, EPOLLOUT, EPOLLET, ...), or 0 when no epoll
// set of this process watches it.
inline unsigned epoll_interest(int fd) {
  unsigned interest = 0;
  for_each_epoll_entry(fd, [&](unsigned events) { interest |= events; });
  return interest;
}

}  // namespace squall::testing_support
