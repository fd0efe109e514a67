// gantry push [flags] REF [DEST]: an image of the store to a registry
// (logic in image/push.h).

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/registry_flags.h"
#include "cli/store_open.h"
#include "image/push.h"

namespace cli {
namespace {

struct PushFlags {
  std::string ref;
  std::string dest;
  int max_concurrent = 3;
  bool quiet = false;
  bool json = false;
  RegistryFlags registry;
};

const char* EventName(image::CopyEvent::Kind kind) {
  switch (kind) {
    case image::CopyEvent::Kind::kBlobSkipped:
      return "exists";
    case image::CopyEvent::Kind::kBlobStarted:
      return "started";
    case image::CopyEvent::Kind::kBlobProgress:
      return "progress";
    case image::CopyEvent::Kind::kBlobDone:
      return "pushed";
    case image::CopyEvent::Kind::kManifestDone:
      return "manifest";
  }
  return "";
}

int Run(const GlobalOptions& global, const PushFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto recs = FindImages(*s->metadata, f.ref);
  if (!recs) return ReportError(recs.error().Wrap("push"));
  const std::string name = recs->front().name;
  auto dest = registry::ImageRef::Parse(f.dest.empty() ? name : f.dest);
  if (!dest) return ReportError(dest.error().Wrap("push: destination `" + f.dest + "`"));
  auto client = MakeClientOptions(global, f.registry);
  if (!client) return ReportError(client.error());

  image::PushOptions opts{.name = name,
                          .destination = *dest,
                          .client = std::move(*client),
                          .max_parallel = f.max_concurrent,
                          .cancel = cancel};
  opts.on_event = [&f](const image::CopyEvent& e) {
    if (f.json) {
      if (e.kind == image::CopyEvent::Kind::kBlobProgress) return;
      nlohmann::json j{
          {"event", EventName(e.kind)}, {"digest", e.blob.digest.str()}, {"size", e.blob.size}};
      std::cout << j.dump() << std::endl;
    } else if (!f.quiet && (e.kind == image::CopyEvent::Kind::kBlobSkipped ||
                            e.kind == image::CopyEvent::Kind::kBlobDone)) {
      std::cout << e.blob.digest.hex().substr(0, 12) << ": "
                << (e.kind == image::CopyEvent::Kind::kBlobDone ? "Pushed" : "Layer already exists")
                << std::endl;
    }
  };
  auto r = image::PushImage(
      {.root = global.root, .content = s->content.get(), .metadata = s->metadata.get()}, opts);
  if (!r) return ReportError(r.error());
  if (r->platform_only)
    std::cerr << "gantry: " << name << " was pulled for one platform: pushing its manifest "
              << r->top.digest.str() << ", not the whole index\n";
  if (f.quiet) {
    std::cout << r->top.digest.str() << "\n";
  } else if (f.json) {
    nlohmann::json j{{"event", "done"},
                     {"ref", dest->str()},
                     {"digest", r->top.digest.str()},
                     {"size", r->top.size}};
    std::cout << j.dump() << std::endl;
  } else {
    std::cout << dest->str() << ": digest: " << r->top.digest.str() << " size: " << r->top.size
              << "\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterPush(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<PushFlags>();
  auto* cmd = app.add_subcommand("push", "Push an image of the store to a registry");
  cmd->add_option("image", f->ref, "Image in the store (reference, short name or image id)")
      ->required();
  cmd->add_option("destination", f->dest,
                  "Registry reference to push to (default: the image's own name)");
  cmd->footer(
      "Blobs the registry already has are not sent (HEAD), blobs in another repository of the "
      "same registry are mounted, layers stream from the store in PATCH requests of up to 16 MiB "
      "and a broken upload resumes where "
      "the registry says it stopped. An image pulled from an index for one platform is pushed "
      "as that platform's manifest (a note on stderr says so); an image whose index and every "
      "manifest are in the store is pushed as the index, with the same digest. Mirrors are "
      "never pushed to. Prints `DEST: digest: sha256:... size: N` at the end.");
  cmd->add_option("--max-concurrent-uploads", f->max_concurrent, "Blobs uploaded at once")
      ->default_str("3")
      ->check(CLI::Range(1, 64));
  auto* q = cmd->add_flag("--quiet,-q", f->quiet, "Print only the pushed digest");
  auto* j = cmd->add_flag("--json", f->json,
                          "Print one JSON object per line: {event: exists|started|pushed|"
                          "manifest|done, digest, size}");
  q->excludes(j);
  AddRegistryFlags(cmd, f->registry);
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
