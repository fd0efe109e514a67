// gantry save [-o FILE] [--format docker-archive|oci-archive|oci-dir] REF...

#include <unistd.h>

#include <iostream>
#include <map>

#include "archive/destinations.h"
#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_image.h"
#include "cli/store_open.h"
#include "image/copy.h"

namespace cli {
namespace {

using common::Errc;

struct SaveFlags {
  std::vector<std::string> refs;
  std::string output;
  std::string format = "docker-archive";
};

int Run(const GlobalOptions& global, const SaveFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();
  const bool dir = f.format == "oci-dir";
  std::string out = f.output.empty() ? "-" : f.output;
  if (out == "-" && dir)
    return ReportError({Errc::kInvalidArgument, 0, "save --format oci-dir: -o DIR is required"});
  // As docker save: an archive is not for a terminal.
  if (out == "-" && ::isatty(1))
    return ReportError({Errc::kInvalidArgument, 0,
                        "save: refusing to write an archive to a terminal: use -o FILE or "
                        "redirect standard output"});
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  const image::PullStore store{
      .root = global.root, .content = s->content.get(), .metadata = s->metadata.get()};

  // Every record the REFs name, before anything is written (an unknown REF
  // leaves no file): their names in order, one entry per distinct image
  // (an image under two names is saved once with both, as docker save
  // keeps both RepoTags).
  std::vector<std::string> names;
  for (const std::string& text : f.refs) {
    auto recs = FindImages(*s->metadata, text);
    if (!recs) return ReportError(recs.error().Wrap("save"));
    for (const store::ImageRecord& r : *recs)
      if (std::find(names.begin(), names.end(), r.name) == names.end()) names.push_back(r.name);
  }

  auto dst = dir                         ? archives::OpenLayoutDestination(out, "")
             : f.format == "oci-archive" ? archives::OpenOciArchiveDestination(out, "")
                                         : archives::OpenDockerArchiveDestination(out, "");
  if (!dst) return ReportError(dst.error().Wrap("save"));

  std::vector<registry::DestinationImage> images;
  for (const std::string& name : names) {
    // One source at a time: each holds the store's shared lock.
    auto src = OpenStoreImage(store, name, cancel);
    if (!src) return ReportError(src.error().Wrap("save"));
    auto copied = image::CopyImage(**src, **dst, {.cancel = cancel});
    if (!copied) return ReportError(copied.error().Wrap("save " + name));
    auto same = std::find_if(images.begin(), images.end(),
                             [&](const auto& i) { return i.top.digest == copied->top.digest; });
    if (same != images.end())
      same->names.push_back(name);
    else
      images.push_back({.top = copied->top, .names = {name}});
  }
  if (auto st = (*dst)->Commit(images, cancel); !st)
    return ReportError(st.error().Wrap("save to " + (*dst)->Describe()));
  return kExitOk;
}

}  // namespace

void RegisterSave(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<SaveFlags>();
  auto* cmd = app.add_subcommand(
      "save", "Write store images to an archive (docker-archive, oci-archive) or an OCI layout");
  cmd->add_option("image", f->refs, "Images of the store (names, short names, ids, oci:DIR[:TAG])")
      ->required();
  cmd->add_option("-o,--output", f->output,
                  "Write to FILE (a directory for oci-dir; default: standard output, refused "
                  "when it is a terminal)");
  cmd->add_option("--format", f->format,
                  "docker-archive (docker/podman load), oci-archive or oci-dir")
      ->check(CLI::IsMember({"docker-archive", "oci-archive", "oci-dir"}))
      ->default_str("docker-archive");
  cmd->footer(
      "Every image is saved under its store names (docker-archive RepoTags, OCI "
      "org.opencontainers.image.ref.name); images share their layers in one archive. An image "
      "pulled from an index is saved as the platform manifest the store holds. Archives are "
      "deterministic: two saves of the same images give the same bytes. A file is written "
      "beside FILE and renamed into place at the end: a failed save leaves nothing.");
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
