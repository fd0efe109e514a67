#include "trust/gpg_verify.h"

#include <gpgme.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <utility>

#include "common/fd.h"
#include "common/fs.h"
#include "trust/config_internal.h"

namespace trust {

// Owning handles of gpgme objects; named (not anonymous) because
// GpgVerifier::State holds one.
namespace gpgme_handles {

struct GpgmeCtxDeleter {
  void operator()(gpgme_ctx_t ctx) const { gpgme_release(ctx); }
};
using GpgmeCtx = std::unique_ptr<std::remove_pointer_t<gpgme_ctx_t>, GpgmeCtxDeleter>;

struct GpgmeDataDeleter {
  void operator()(gpgme_data_t data) const { gpgme_data_release(data); }
};
using GpgmeData = std::unique_ptr<std::remove_pointer_t<gpgme_data_t>, GpgmeDataDeleter>;

struct GpgmeKeyDeleter {
  void operator()(gpgme_key_t key) const { gpgme_key_unref(key); }
};
using GpgmeKey = std::unique_ptr<std::remove_pointer_t<gpgme_key_t>, GpgmeKeyDeleter>;

}  // namespace gpgme_handles

namespace {

using gpgme_handles::GpgmeData;

std::string GpgmeMessage(gpgme_error_t err) { return gpgme_strerror(err); }

// gpgme must be initialised once per process before any context exists;
// it then checks that the gpg engine is there. gpgme_check_version sets
// SIGPIPE to be ignored when it was not handled: the disposition is
// process-wide, survives exec, and the CLI decides it
// (cli/app.h, IgnoreSigpipe), so it is put back as it was.
common::Status InitGpgme() {
  static const gpgme_error_t engine = [] {
    struct sigaction before {};
    ::sigaction(SIGPIPE, nullptr, &before);
    gpgme_check_version(nullptr);
    ::sigaction(SIGPIPE, &before, nullptr);
    return gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
  }();
  if (engine != 0) {
    return common::MakeError(common::Errc::kUnavailable,
                             "run gpg (install gnupg): " + GpgmeMessage(engine));
  }
  return {};
}

// A data object reading `bytes`, which must outlive it (no copy).
common::Result<GpgmeData> DataFrom(std::string_view bytes) {
  gpgme_data_t raw = nullptr;
  gpgme_error_t err = gpgme_data_new_from_mem(&raw, bytes.data(), bytes.size(), 0);
  if (err != 0)
    return common::MakeError(common::Errc::kInternal, "gpgme data: " + GpgmeMessage(err));
  return GpgmeData(raw);
}

common::Result<GpgmeData> EmptyData() {
  gpgme_data_t raw = nullptr;
  gpgme_error_t err = gpgme_data_new(&raw);
  if (err != 0)
    return common::MakeError(common::Errc::kInternal, "gpgme data: " + GpgmeMessage(err));
  return GpgmeData(raw);
}

// Takes the bytes written to `data`, releasing it.
std::string TakeBytes(GpgmeData data) {
  size_t len = 0;
  char* mem = gpgme_data_release_and_get_mem(data.release(), &len);
  std::string out(mem != nullptr ? mem : "", mem != nullptr ? len : 0);
  gpgme_free(mem);
  return out;
}

// Blocks SIGPIPE in this thread while gpgme talks to gpg: gpgme writes
// the signature or key to gpg through a pipe, and gpg may exit before it
// has read it all (on data that is not OpenPGP). The write then fails
// with EPIPE, which gpgme reports, instead of killing the process. A
// SIGPIPE raised meanwhile is consumed before the mask is restored, unless
// one was already pending before.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_set_);
    sigset_t pending;
    sigpending(&pending);
    already_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlocked() {
    sigset_t pending;
    sigpending(&pending);
    if (!already_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      const struct timespec zero {};
      while (sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_set_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t pipe_set_;
  sigset_t old_set_;
  bool already_pending_ = false;
};

std::unexpected<common::Error> Untrusted(std::string_view fpr, std::string_view why) {
  return common::MakeError(common::Errc::kPermissionDenied,
                           "signed by key " + std::string(fpr) + ", " + std::string(why));
}

// Why a signature gpg reported on is not valid, or nothing when it is.
// The same test as containers/image's gpgme mechanism: gpg's status, the
// validity `never`, a validity reason, or a key not meant for signing.
common::Status CheckSignatureStatus(const gpgme_signature_t sig) {
  std::string fpr = sig->fpr != nullptr ? sig->fpr : "(unknown)";
  switch (gpgme_err_code(sig->status)) {
    case GPG_ERR_NO_ERROR:
      break;
    case GPG_ERR_NO_PUBKEY:
      return Untrusted(fpr, "which is not a trusted key");
    case GPG_ERR_KEY_EXPIRED:
      return Untrusted(fpr, "which has expired");
    case GPG_ERR_CERT_REVOKED:
      return Untrusted(fpr, "which is revoked");
    case GPG_ERR_SIG_EXPIRED:
      return Untrusted(fpr, "in a signature that has expired");
    case GPG_ERR_BAD_SIGNATURE:
      return common::MakeError(
          common::Errc::kDataLoss,
          "bad signature by key " + fpr + ": the signed data or the signature was altered");
    default:
      return Untrusted(fpr, "in a signature gpg finds invalid: " + GpgmeMessage(sig->status));
  }
  if (sig->validity == GPGME_VALIDITY_NEVER) return Untrusted(fpr, "which is never valid");
  if (sig->validity_reason != 0)
    return Untrusted(fpr, "which is not valid: " + GpgmeMessage(sig->validity_reason));
  if (sig->wrong_key_usage) return Untrusted(fpr, "which is not meant for signing");
  return {};
}

}  // namespace

struct GpgVerifier::State {
  common::TempDir home;
  gpgme_handles::GpgmeCtx ctx;  // released before `home` is removed
  std::vector<std::string> fingerprints;
  // Fingerprint of every key and subkey imported → its primary key's.
  std::map<std::string, std::string, std::less<>> primary_of;
};

GpgVerifier::GpgVerifier(std::unique_ptr<State> state) : state_(std::move(state)) {}
GpgVerifier::GpgVerifier(GpgVerifier&&) noexcept = default;
GpgVerifier& GpgVerifier::operator=(GpgVerifier&&) noexcept = default;
GpgVerifier::~GpgVerifier() = default;

const std::vector<std::string>& GpgVerifier::fingerprints() const { return state_->fingerprints; }

// Fills state.primary_of from the keyring, once, so that Verify runs no
// other gpg than the verification's. The listing is read to its end: gpg
// has then finished with the home.
common::Status GpgVerifier::ListSubkeys(State& state) {
  gpgme_ctx_t ctx = state.ctx.get();
  SigpipeBlocked blocked;
  gpgme_error_t err = gpgme_op_keylist_start(ctx, nullptr, 0);
  for (;;) {
    if (err != 0) break;
    gpgme_key_t raw = nullptr;
    err = gpgme_op_keylist_next(ctx, &raw);
    if (err != 0) break;
    gpgme_handles::GpgmeKey key(raw);
    if (key->subkeys == nullptr || key->subkeys->fpr == nullptr) continue;
    std::string primary = key->subkeys->fpr;
    for (gpgme_subkey_t sub = key->subkeys; sub != nullptr; sub = sub->next)
      if (sub->fpr != nullptr) state.primary_of.emplace(sub->fpr, primary);
  }
  (void)gpgme_op_keylist_end(ctx);
  if (gpgme_err_code(err) != GPG_ERR_EOF)
    return common::MakeError(common::Errc::kUnavailable,
                             "list imported keys: " + GpgmeMessage(err));
  return {};
}

common::Result<GpgVerifier> GpgVerifier::Create(const std::vector<PublicKeyBlob>& keys) {
  TRY(InitGpgme());
  auto state = std::make_unique<State>();
  // mkdtemp creates the home 0700, as gpg wants its home.
  ASSIGN_OR_RETURN(state->home, common::TempDir::Create("gantry-gpg"));
  // no-autostart: gpg runs neither gpg-agent nor dirmngr, so nothing is
  // left running and nothing is fetched; neither is needed to import
  // public keys or to verify. The rest keeps gpg from writing to the home
  // when it only reads: gpgme may return before the gpg process it ran
  // has exited (it is not gpgme's child), and a lock or seed file that
  // gpg writes as it exits would keep the home from being removed.
  // lock-never is safe because the home is this verifier's alone, and one
  // operation runs at a time. Key trust is the policy's, so gpg need not
  // update its trust database.
  TRY(common::AtomicWriteFile(state->home.path() / "gpg.conf",
                              "no-autostart\nlock-never\nno-random-seed-file\n"
                              "no-auto-check-trustdb\n",
                              0600));

  gpgme_ctx_t raw = nullptr;
  if (gpgme_error_t err = gpgme_new(&raw); err != 0)
    return common::MakeError(common::Errc::kInternal, "gpgme context: " + GpgmeMessage(err));
  state->ctx.reset(raw);
  gpgme_ctx_t ctx = state->ctx.get();
  gpgme_error_t err = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP);
  if (err == 0) {
    err =
        gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, nullptr, state->home.path().c_str());
  }
  if (err != 0)
    return common::MakeError(common::Errc::kUnavailable, "set up gpg: " + GpgmeMessage(err));
  gpgme_set_offline(ctx, 1);

  for (const PublicKeyBlob& key : keys) {
    std::string what = "import key `" + key.source + "`";
    ASSIGN_OR_RETURN(GpgmeData data, DataFrom(key.bytes));
    {
      SigpipeBlocked blocked;
      err = gpgme_op_import(ctx, data.get());
    }
    if (err != 0) {
      return common::MakeError(common::Errc::kInvalidArgument,
                               internal::OneLine(what + ": " + GpgmeMessage(err)));
    }
    gpgme_import_result_t result = gpgme_op_import_result(ctx);
    size_t found = 0;
    for (gpgme_import_status_t s = result != nullptr ? result->imports : nullptr; s != nullptr;
         s = s->next) {
      if (s->result != 0 || s->fpr == nullptr) continue;
      ++found;
      if (std::find(state->fingerprints.begin(), state->fingerprints.end(), s->fpr) ==
          state->fingerprints.end())
        state->fingerprints.emplace_back(s->fpr);
    }
    if (found == 0) {
      return common::MakeError(common::Errc::kInvalidArgument,
                               internal::OneLine(what + ": no OpenPGP public key in it"));
    }
  }
  TRY(ListSubkeys(*state));
  return GpgVerifier(std::move(state));
}

common::Result<GpgVerified> GpgVerifier::Verify(std::string_view signature) const {
  // gpgme 1.18 writes the message to gpg through a pipe in chunks of
  // 4 KiB, and when gpg gives up on a broken message and exits before the
  // last chunk is written, gpgme polls the dead pipe forever (POLLERR,
  // never POLLOUT). A message of one chunk is written whole before gpg
  // can read it, so gpg never leaves gpgme with data to write. Simple
  // signing signatures are well under 1 KiB.
  if (signature.size() > kMaxGpgSignatureSize) {
    return common::MakeError(common::Errc::kDataLoss,
                             "signature of " + std::to_string(signature.size()) +
                                 " bytes is larger than " + std::to_string(kMaxGpgSignatureSize) +
                                 " bytes");
  }
  gpgme_ctx_t ctx = state_->ctx.get();
  ASSIGN_OR_RETURN(GpgmeData sig, DataFrom(signature));
  ASSIGN_OR_RETURN(GpgmeData plain, EmptyData());
  gpgme_error_t err = 0;
  {
    SigpipeBlocked blocked;
    err = gpgme_op_verify(ctx, sig.get(), nullptr, plain.get());
  }
  gpgme_verify_result_t result = err == 0 ? gpgme_op_verify_result(ctx) : nullptr;
  size_t count = 0;
  for (gpgme_signature_t s = result != nullptr ? result->signatures : nullptr; s != nullptr;
       s = s->next)
    ++count;
  if (err != 0 || count == 0) {
    return common::MakeError(common::Errc::kDataLoss,
                             "not an OpenPGP signed message" +
                                 (err != 0 ? " (" + GpgmeMessage(err) + ")" : std::string()));
  }
  if (count != 1) {
    return common::MakeError(common::Errc::kDataLoss,
                             std::to_string(count) + " signatures in one message, want 1");
  }
  const gpgme_signature_t s = result->signatures;
  TRY(CheckSignatureStatus(s));
  // gpg names the key that signed, a subkey perhaps; the policy trusts
  // the primary keys that were imported.
  std::string fpr = s->fpr != nullptr ? s->fpr : "";
  auto primary = state_->primary_of.find(fpr);
  if (primary == state_->primary_of.end()) return Untrusted(fpr, "which is not a trusted key");
  fpr = primary->second;
  std::string payload = TakeBytes(std::move(plain));
  ASSIGN_OR_RETURN(SignedClaim claim, ParseSignedPayload(payload, PayloadType::kSimpleSigning));
  return GpgVerified{
      .claim = std::move(claim), .payload = std::move(payload), .fingerprint = std::move(fpr)};
}

}  // namespace trust
