// What /proc/self tells tests about this process's descriptors and system calls: how many
// it has open (nothing leaks), which epoll sets watch a descriptor, how many reads it made.
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

// How many of this process's epoll sets watch `fd` (their /proc/self/fdinfo lists it as a
// "tfd"): shows whether a registration was taken out, by EPOLL_CTL_DEL or by close(2).
inline int epoll_watchers(int fd) {
  int n = 0;
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
      std::string key;
      int watched = -1;
      if (words >> key >> watched && key == "tfd:" && watched == fd) ++n;
    }
  }
  closedir(dir);
  return n;
}

}  // namespace squall::testing_support
