// gantry copy [--all | --platform P] SRC DST: any transport to any other
// (archive/transport.h), without the store unless SRC or DST is gantry:.

#include <iostream>

#include "archive/transport.h"
#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/registry_flags.h"
#include "cli/store_image.h"
#include "cli/store_open.h"
#include "image/copy.h"
#include "image/pull.h"

namespace cli {
namespace {

using archives::Transport;
using common::Errc;

struct CopyFlags {
  std::string src, dst;
  std::string platform;
  bool all = false;
  RegistryFlags registry;
};

// Into the store: the pull pipeline, for the sources it reads
// (registry::SourceSpec: a registry or an OCI layout). The one place to
// add the archive sources when the pipeline takes them.
common::Result<registry::SourceSpec> StoreSourceSpec(const Transport& src, const Transport& dst) {
  if (src.kind == Transport::Kind::kRegistry) {
    if (dst.ref != src.ref)
      return common::MakeError(Errc::kInvalidArgument,
                               "copy into gantry:" + dst.tag +
                                   ": an image from a registry is "
                                   "recorded under its own reference: use gantry:" +
                                   src.ref.str());
    return registry::ParseSourceSpec(src.ref.str());
  }
  // A layout or an archive: the pull sources of the same names.
  return registry::ParseSourceSpec(std::string(archives::TransportName(src.kind)) + ":" +
                                       src.path.string() + (src.tag.empty() ? "" : ":" + src.tag),
                                   dst.tag);
}

int IntoStore(const GlobalOptions& global, const CopyFlags& f, const Transport& src,
              const Transport& dst, image::PullImageOptions opts) {
  auto spec = StoreSourceSpec(src, dst);
  if (!spec) return ReportError(spec.error());
  opts.source = *spec;
  auto t = OpenPullTarget(global, /*unpack=*/true);
  if (!t) return ReportError(t.error());
  opts.snapshotter = t->snapshotter.get();
  auto r = image::PullImage(t->store, opts);
  if (!r) return ReportError(r.error().Wrap("copy " + f.src + " to " + f.dst));
  std::cout << r->pull.name << "\n";
  return kExitOk;
}

int Run(const GlobalOptions& global, const CopyFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();
  auto src = archives::ParseTransport(f.src);
  if (!src) return ReportError(src.error());
  auto dst = archives::ParseTransport(f.dst);
  if (!dst) return ReportError(dst.error());
  auto platform_flag = PlatformFlag(f.platform);
  if (!platform_flag) return ReportError(platform_flag.error());
  const std::optional<oci::Platform>& platform = *platform_flag;
  auto client = MakeClientOptions(global, f.registry);
  if (!client) return ReportError(client.error());
  // The signature policy judges what comes in from outside, as skopeo
  // copy does; an image of the store passed it when it came in.
  std::shared_ptr<const image::TrustPolicy> trust;
  if (src->kind != Transport::Kind::kStore) {
    auto loaded = LoadTrust(global);
    if (!loaded) return ReportError(loaded.error());
    trust = std::move(*loaded);
  }
  if (dst->kind == Transport::Kind::kStore) {
    if (f.all)
      return ReportError(
          {Errc::kInvalidArgument, 0, "copy --all: the store keeps one platform of an image"});
    return IntoStore(global, f, *src, *dst,
                     {.platform = platform, .client = *client, .cancel = cancel, .trust = trust});
  }

  // The store is opened only for a gantry: source; the source holds its
  // shared lock until it is destroyed.
  std::optional<OpenedStore> opened;
  common::Result<std::unique_ptr<registry::ImageSource>> source =
      common::MakeError(Errc::kInternal, "no source");
  if (src->kind == Transport::Kind::kStore) {
    auto s = OpenStore(global);
    if (!s) return ReportError(s.error());
    opened = std::move(*s);
    auto recs = FindImages(*opened->metadata, src->tag);
    if (!recs) return ReportError(recs.error().Wrap("copy"));
    source = OpenStoreImage(
        {.root = global.root, .content = opened->content.get(), .metadata = opened->metadata.get()},
        recs->front().name, cancel);
  } else {
    source = archives::OpenTransportSource(*src, *client);
  }
  if (!source) return ReportError(source.error().Wrap("copy from " + f.src));
  auto destination = archives::OpenTransportDestination(*dst, *client);
  if (!destination) return ReportError(destination.error().Wrap("copy to " + f.dst));
  auto copied = image::CopyImage(
      **source, **destination,
      {.platform = platform, .all_platforms = f.all, .cancel = cancel, .trust = trust});
  if (!copied) return ReportError(copied.error());
  // The destination's own TAG/REF names the image; a store image keeps
  // its store name too.
  registry::DestinationImage out{.top = copied->top, .names = {}};
  if (src->kind == Transport::Kind::kStore) out.names.push_back((*source)->Describe());
  if (auto st = (*destination)->Commit(std::span(&out, 1), cancel); !st)
    return ReportError(st.error().Wrap("copy to " + (*destination)->Describe()));
  std::cout << copied->top.digest.str() << "\n";
  return kExitOk;
}

}  // namespace

void RegisterCopy(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<CopyFlags>();
  auto* cmd = app.add_subcommand("copy", "Copy an image between registries, layouts and archives");
  cmd->add_option("source", f->src,
                  "docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] "
                  "or gantry:NAME (an image of the store)")
      ->required();
  cmd->add_option("destination", f->dst, "The same transports")->required();
  auto* platform = cmd->add_option("--platform", f->platform,
                                   "os/arch[/variant] to pick from an index (default: this host)");
  cmd->add_flag("--all", f->all,
                "Copy an index whole, every platform's manifest with its blobs (not to "
                "docker-archive or gantry:)")
      ->excludes(platform);
  AddRegistryFlags(cmd, f->registry);
  cmd->footer(
      "Manifests and indexes are copied byte for byte: their digests stay. DIR and FILE end at "
      "the first ':'. Only gantry: touches the store: as a source it reads a store image, as a "
      "destination it pulls (a registry or oci: source) as `gantry pull` does. Prints the "
      "digest of what was copied (the index with --all, else the platform manifest).");
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
