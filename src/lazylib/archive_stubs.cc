// The libarchive functions gantry calls, loading libarchive
// (GANTRY_ARCHIVE_SONAME) at the first call. See lazy_library.h.

#include <archive.h>
#include <archive_entry.h>

#include <cstdarg>
#include <cstdio>

#include "lazylib/lazy_library.h"

#ifndef GANTRY_ARCHIVE_SONAME
#error "GANTRY_ARCHIVE_SONAME must name libarchive's SONAME"
#endif

namespace {

constexpr const char* kSoname = GANTRY_ARCHIVE_SONAME;

void* Archive() {
  static void* const lib = lazylib::Open(kSoname);
  return lib;
}

}  // namespace

#define ARCHIVE_STUB(ret, name, params, args) \
  LAZYLIB_STUB(Archive, kSoname, ret, name, params, args)
#define ENTRY_STUB(ret, name) ARCHIVE_STUB(ret, name, (struct archive_entry * e), (e))

ARCHIVE_STUB(struct archive*, archive_read_new, (void), ())
ARCHIVE_STUB(int, archive_read_free, (struct archive * a), (a))
ARCHIVE_STUB(int, archive_read_support_format_tar, (struct archive * a), (a))
ARCHIVE_STUB(int, archive_read_support_format_gnutar, (struct archive * a), (a))
ARCHIVE_STUB(int, archive_read_open,
             (struct archive * a, void* data, archive_open_callback* open,
              archive_read_callback* read, archive_close_callback* close),
             (a, data, open, read, close))
ARCHIVE_STUB(int, archive_read_next_header, (struct archive * a, struct archive_entry** e), (a, e))
ARCHIVE_STUB(int, archive_read_data_block,
             (struct archive * a, const void** buff, size_t* size, la_int64_t* offset),
             (a, buff, size, offset))
ARCHIVE_STUB(int, archive_errno, (struct archive * a), (a))
ARCHIVE_STUB(const char*, archive_error_string, (struct archive * a), (a))

ENTRY_STUB(time_t, archive_entry_atime)
ENTRY_STUB(long, archive_entry_atime_nsec)
ENTRY_STUB(int, archive_entry_atime_is_set)
ENTRY_STUB(time_t, archive_entry_mtime)
ENTRY_STUB(long, archive_entry_mtime_nsec)
ENTRY_STUB(int, archive_entry_mtime_is_set)
ENTRY_STUB(__LA_MODE_T, archive_entry_filetype)
ENTRY_STUB(__LA_MODE_T, archive_entry_perm)
ENTRY_STUB(la_int64_t, archive_entry_uid)
ENTRY_STUB(la_int64_t, archive_entry_gid)
ENTRY_STUB(const char*, archive_entry_pathname)
ENTRY_STUB(const char*, archive_entry_hardlink)
ENTRY_STUB(const char*, archive_entry_symlink)
ENTRY_STUB(dev_t, archive_entry_rdevmajor)
ENTRY_STUB(dev_t, archive_entry_rdevminor)
ENTRY_STUB(la_int64_t, archive_entry_size)
ENTRY_STUB(int, archive_entry_size_is_set)
ENTRY_STUB(int, archive_entry_sparse_count)
ENTRY_STUB(int, archive_entry_xattr_count)
ENTRY_STUB(int, archive_entry_xattr_reset)
ARCHIVE_STUB(int, archive_entry_xattr_next,
             (struct archive_entry * e, const char** name, const void** value, size_t* size),
             (e, name, value, size))

// Variadic: formatted here, passed on as "%s".
extern "C" void archive_set_error(struct archive* a, int err, const char* fmt, ...) {
  static const auto real = reinterpret_cast<decltype(&::archive_set_error)>(
      lazylib::Symbol(Archive(), kSoname, "archive_set_error"));
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  real(a, err, "%s", message);
}
