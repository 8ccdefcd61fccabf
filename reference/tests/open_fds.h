// For tests that check nothing leaks a file descriptor: how many this process has open.
#pragma once

#include <dirent.h>

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

}  // namespace squall::testing_support
