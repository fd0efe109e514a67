#pragma once
// The error model shared by every gantry module.
//
// Functions that can fail return Result<T> (std::expected<T, Error>) or
// Status (Result<void>). An Error carries a code from a short list (mapped
// 1:1 onto gRPC codes by criimage and onto exit codes by the CLI), the errno
// when a system call was the cause, and a message that gains context at
// each layer, reading outward to inward:
//   "pull docker.io/library/alpine:3.20: fetch blob sha256:ab…: HTTP 503"
// No exceptions cross a module boundary.

#include <cerrno>
#include <expected>
#include <source_location>
#include <string>
#include <string_view>

namespace common {

enum class Errc {
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,
  kFailedPrecondition,
  kUnavailable,
  kDataLoss,
  kPermissionDenied,
  kUnauthenticated,
  kResourceExhausted,
  kAborted,
  kCancelled,
  kUnimplemented,
  kInternal,
};

// Stable lower-case name of a code ("not found", "data loss", …).
[[nodiscard]] std::string_view ErrcName(Errc code);

struct Error {
  Errc code = Errc::kInternal;
  int sys_errno = 0;    // 0 when no system call caused it
  std::string message;  // "action `object`: cause", context prepended by Wrap
  std::source_location where = std::source_location::current();

  // Returns a copy whose message is "context: message".
  [[nodiscard]] Error Wrap(std::string_view context) const&;
  [[nodiscard]] Error Wrap(std::string_view context) &&;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = Result<void>;

// Builds an error value ready to return from a function returning Result.
[[nodiscard]] std::unexpected<Error> MakeError(
    Errc code, std::string message, std::source_location where = std::source_location::current());

// Maps errno (ENOENT → NotFound, EEXIST → AlreadyExists, EPERM/EACCES →
// PermissionDenied, ENOSPC/EMFILE/ENFILE/EDQUOT → ResourceExhausted,
// EINVAL → InvalidArgument, else Internal) and appends strerror:
//   ErrnoError("open `/x`", ENOENT) → "open `/x`: No such file or directory".
[[nodiscard]] std::unexpected<Error> ErrnoError(
    std::string_view action, int err = errno,
    std::source_location where = std::source_location::current());

[[nodiscard]] Errc ErrcFromErrno(int err);

// Whether a file system ran out of space (ENOSPC) or quota (EDQUOT).
[[nodiscard]] inline bool IsNoSpace(const Error& e) {
  return e.sys_errno == ENOSPC || e.sys_errno == EDQUOT;
}

// Prepends context to the error of a failed result; passes success through.
template <class T>
[[nodiscard]] Result<T> Wrap(Result<T> r, std::string_view context) {
  if (!r) return std::unexpected(std::move(r.error()).Wrap(context));
  return r;
}

}  // namespace common

// TRY(expr): evaluates a Result/Status expression and returns its error from
// the enclosing function (whose return type must be a Result) on failure.
#define GANTRY_CONCAT_INNER(a, b) a##b
#define GANTRY_CONCAT(a, b) GANTRY_CONCAT_INNER(a, b)
#define TRY(expr)                                                                 \
  do {                                                                            \
    auto&& GANTRY_CONCAT(try_r_, __LINE__) = (expr);                              \
    if (!GANTRY_CONCAT(try_r_, __LINE__))                                         \
      return std::unexpected(std::move(GANTRY_CONCAT(try_r_, __LINE__).error())); \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): `lhs = std::move(*expr)` or return its error.
#define ASSIGN_OR_RETURN(lhs, expr)                                             \
  auto&& GANTRY_CONCAT(aor_r_, __LINE__) = (expr);                              \
  if (!GANTRY_CONCAT(aor_r_, __LINE__))                                         \
    return std::unexpected(std::move(GANTRY_CONCAT(aor_r_, __LINE__).error())); \
  lhs = std::move(*GANTRY_CONCAT(aor_r_, __LINE__))
