// gantry load [-i FILE|DIR|-] [--name NAME]

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "archive/archive_source.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/registry_flags.h"
#include "cli/store_open.h"
#include "common/fd.h"
#include "image/load_stream.h"
#include "image/pull.h"

namespace cli {
namespace {

struct LoadFlags {
  std::string input;
  std::string name;
  int max_layers = image::kDefaultMaxLayers;
  bool quiet = false;
  bool no_unpack = false;
  bool ignore_space_check = false;
};

void PrintLoaded(const LoadFlags& f, const archives::LoadItem& item, const image::PulledImage& r) {
  if (f.quiet) return;
  std::cout << "Loaded image: " << r.pull.name << "\n";
  if (item.untagged) std::cout << "Loaded image ID: " << r.pull.config.digest.str() << "\n";
}

image::PullImageOptions PullOptions(const LoadFlags& f, const PullTarget& t,
                                    std::shared_ptr<const image::TrustPolicy> trust,
                                    const std::atomic<bool>* cancel) {
  image::PullImageOptions opts;
  opts.trust = std::move(trust);
  opts.max_layers = f.max_layers;
  opts.check_space = !f.ignore_space_check;
  opts.cancel = cancel;
  opts.snapshotter = t.snapshotter.get();
  return opts;
}

// No -i, or `-i -`: the archive comes on standard input, streamed from a
// pipe, read in place from a redirected file (image/load_stream.h); a
// gzip-compressed FILE goes the same way, as `fd`.
int RunStream(const GlobalOptions& global, const LoadFlags& f, const std::atomic<bool>* cancel,
              int fd, const std::string& what, const std::string& base) {
  auto t = OpenPullTarget(global, !f.no_unpack);
  if (!t) return ReportError(t.error());
  auto trust = LoadTrust(global);
  if (!trust) return ReportError(trust.error());
  image::LoadStreamOptions opts{
      .fd = fd,
      .what = what,
      .base = base,
      .name = f.name,
      .pull = PullOptions(f, *t, std::move(*trust), cancel),
      .on_loaded = [&f](const archives::LoadItem& item, const image::PulledImage& r) {
        PrintLoaded(f, item, r);
      }};
  auto st = image::LoadStream(t->store, opts);
  if (!st) return ReportError(st.error());
  return kExitOk;
}

int Run(const GlobalOptions& global, const LoadFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();
  IgnoreSigpipe();
  if (f.input.empty() || f.input == "-") {
    if (isatty(STDIN_FILENO) != 0)
      return ReportError(common::Error{
          common::Errc::kInvalidArgument, 0,
          "load: standard input is a terminal; give the archive with -i FILE or through a pipe "
          "(docker save IMAGE | gantry load)"});
    return RunStream(global, f, cancel, STDIN_FILENO, "standard input", "stdin");
  }
  if (!std::filesystem::is_directory(f.input)) {
    // A compressed archive cannot be read in place, nor can a pipe
    // (`-i <(docker save app)`): both are streamed. A file that cannot be
    // opened is reported as below.
    auto fd = common::Open(f.input, O_RDONLY);
    struct stat st {};
    bool pipe = fd && ::fstat(fd->get(), &st) == 0 && !S_ISREG(st.st_mode);
    auto gzip = fd ? archives::ArchiveContents::IsGzip(fd->get()) : common::Result<bool>(false);
    if (pipe || (gzip && *gzip)) return RunStream(global, f, cancel, fd->get(), f.input, f.input);
  }
  auto items = archives::ListLoadItems(f.input, f.name);
  if (!items) return ReportError(items.error());
  auto t = OpenPullTarget(global, !f.no_unpack);
  if (!t) return ReportError(t.error());
  auto trust = LoadTrust(global);
  if (!trust) return ReportError(trust.error());
  // Each name through the one pull pipeline: the second name of an image
  // finds every blob and layer present and only writes its record.
  for (const archives::LoadItem& item : *items) {
    image::PullImageOptions opts = PullOptions(f, *t, *trust, cancel);
    opts.source = item.spec;
    auto r = image::PullImage(t->store, opts);
    if (!r) return ReportError(r.error().Wrap("load `" + f.input + "`"));
    PrintLoaded(f, item, *r);
  }
  return kExitOk;
}

}  // namespace

void RegisterLoad(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<LoadFlags>();
  auto* cmd = app.add_subcommand(
      "load", "Load every image of a docker-archive, an oci-archive or an OCI layout directory");
  cmd->add_option("--input,-i", f->input,
                  "The archive (docker save, skopeo/podman docker-archive: or oci-archive:) or an "
                  "OCI layout directory; - or none: standard input (a pipe, or a file redirected)");
  cmd->add_option("--name", f->name,
                  "Record the archive's only image under NAME (a NAME that names no registry goes "
                  "under localhost/)");
  AddMaxLayersFlag(cmd, f->max_layers);
  cmd->add_flag("--quiet,-q", f->quiet, "Print nothing but errors");
  cmd->add_flag("--no-unpack", f->no_unpack, "Only store the blobs; do not unpack into snapshots");
  cmd->add_flag("--ignore-space-check", f->ignore_space_check,
                "Load even when the store's file system looks too small");
  cmd->footer(
      "Every image and every tag of the archive is recorded, each through the same pipeline "
      "as gantry pull (blobs verified, layers unpacked in parallel as they are read), and "
      "printed as `Loaded image: NAME`. RepoTags of a docker-archive are docker references "
      "(app:v1 is docker.io/library/app:v1); an oci-archive's ref names are named as gantry "
      "pull names oci:DIR:TAG. An image without a name is recorded as localhost/BASE:latest "
      "(BASE from the file name; `:N`, its position, when several lack a name) and its ID "
      "printed too. A name given to two images of the archive fails the load before anything "
      "is recorded. The same archives are pull sources: gantry pull docker-archive:FILE[:REF] "
      "and oci-archive:FILE[:TAG] (FILE ends at the first ':'; REF/TAG may be @N). Without -i "
      "(or with -i -) the archive is read from standard input: `docker save app | gantry load` "
      "streams it into the store once, without a temporary copy, every blob verified; images "
      "without a name are then recorded as localhost/stdin:latest. A gzip-compressed archive "
      "(docker save app | gzip) is accepted on standard input and as FILE.");
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
