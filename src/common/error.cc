#include "common/error.h"

#include <cstring>

namespace common {

std::string_view ErrcName(Errc code) {
  switch (code) {
    case Errc::kNotFound:
      return "not found";
    case Errc::kAlreadyExists:
      return "already exists";
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kFailedPrecondition:
      return "failed precondition";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kDataLoss:
      return "data loss";
    case Errc::kPermissionDenied:
      return "permission denied";
    case Errc::kUnauthenticated:
      return "unauthenticated";
    case Errc::kResourceExhausted:
      return "resource exhausted";
    case Errc::kAborted:
      return "aborted";
    case Errc::kCancelled:
      return "cancelled";
    case Errc::kUnimplemented:
      return "unimplemented";
    case Errc::kInternal:
      return "internal";
  }
  return "internal";
}

Error Error::Wrap(std::string_view context) const& {
  Error copy = *this;
  return std::move(copy).Wrap(context);
}

Error Error::Wrap(std::string_view context) && {
  std::string m;
  m.reserve(context.size() + 2 + message.size());
  m.append(context);
  if (!message.empty()) {
    m.append(": ");
    m.append(message);
  }
  message = std::move(m);
  return std::move(*this);
}

std::unexpected<Error> MakeError(Errc code, std::string message, std::source_location where) {
  return std::unexpected(Error{code, 0, std::move(message), where});
}

Errc ErrcFromErrno(int err) {
  switch (err) {
    case ENOENT:
      return Errc::kNotFound;
    case EEXIST:
      return Errc::kAlreadyExists;
    case EPERM:
    case EACCES:
      return Errc::kPermissionDenied;
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
      return Errc::kResourceExhausted;
    case EINVAL:
      return Errc::kInvalidArgument;
    case ECANCELED:
      return Errc::kCancelled;
    default:
      return Errc::kInternal;
  }
}

std::unexpected<Error> ErrnoError(std::string_view action, int err, std::source_location where) {
  std::string m(action);
  m.append(": ");
  m.append(std::strerror(err));
  return std::unexpected(Error{ErrcFromErrno(err), err, std::move(m), where});
}

}  // namespace common
