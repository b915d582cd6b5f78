#pragma once
// Durable file writes: temp file in the same directory, fsync, rename, fsync directory.
#include <string>
#include <string_view>

#include "ep/status.h"

namespace ep::fs {

// Writes `data` to `path` atomically and durably. If no_clobber, fails with kConflict
// when `path` already exists (link(2) instead of rename(2), so it is never overwritten).
Status write_file_atomic(const std::string& path, std::string_view data, bool no_clobber = false,
                         int mode = 0644);
// fsync a directory (after rename/link/unlink inside it).
Status fsync_dir(const std::string& dir);
// Creates `path` (kConflict when it exists) holding `data`, WITHOUT syncing: for batched
// writers that make many files durable with one sync_filesystem() (model::Store::commit).
Status write_new_file(const std::string& path, std::string_view data, int mode = 0644);
// syncfs(2) on the file system holding `path`: everything written to it so far, file
// data and directory entries, is durable when this returns ok.
Status sync_filesystem(const std::string& path);
// Writes all of `data` to `fd` (short writes and EINTR retried); an error names `ctx`.
Status write_fully(int fd, std::string_view data, const std::string& ctx);
// errno as a Status: kIo, "ctx: strerror(err)".
Status errno_status(const std::string& ctx, int err);
// Whether s is errno_status of ENOSPC or EDQUOT: the storage is full (callers answer
// clients without the path, and retry later).
bool is_storage_full(const Status& s);
// mkdir -p.
Status make_dirs(const std::string& dir, int mode = 0755);
Result<std::string> read_file(const std::string& path);

}  // namespace ep::fs
