// gantry inspect REF: the image record's descriptor, manifest and config.
// gantry inspect --signatures REF: the image's signatures where its
// registry keeps them, judged by the signature policy.

#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/registry_flags.h"
#include "cli/store_open.h"
#include "image/fetch.h"
#include "image/image_record.h"
#include "image/trust_gate.h"
#include "oci/manifest.h"

namespace cli {
namespace {

struct InspectFlags {
  std::string ref;
  bool signatures = false;
  std::string platform;
  RegistryFlags registry;
};

enum class Blob { kManifest, kConfig };

// A stored manifest, index or config as JSON. A config is parsed within its
// limits (oci/manifest.h), as every other reader of configs does: it
// may be 16 MiB of tiny values.
common::Result<nlohmann::json> BlobJson(const OpenedStore& s, const common::Digest& d,
                                        Blob kind = Blob::kManifest) {
  ASSIGN_OR_RETURN(std::string body, s.content->ReadBlob(d));
  if (kind == Blob::kConfig)
    return common::Wrap(oci::ParseImageConfigJson(body), "config " + d.str());
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded())
    return common::MakeError(common::Errc::kDataLoss, "blob " + d.str() + " is not valid JSON");
  return j;
}

// The report as JSON: the decision, then each signature with its verdict
// under each requirement of its kind.
nlohmann::json ReportJson(const image::SignatureReport& r) {
  const trust::Decision& d = r.decision;
  nlohmann::json j = {
      {"image", r.image},
      {"manifest", r.manifest.str()},
      {"policy", r.policy_file.empty() ? nlohmann::json() : nlohmann::json(r.policy_file)},
      {"accepted", d.refusal.empty()}};
  if (d.match.requirements != nullptr) j["scope"] = trust::ScopeName(d.match);
  if (!d.refusal.empty()) j["refusal"] = d.refusal;
  if (!r.fetch_error.empty()) j["fetch_error"] = r.fetch_error;
  auto requirements = nlohmann::json::array();
  for (size_t i = 0; i < d.requirements.size(); ++i) {
    const trust::RequirementVerdict& v = d.requirements[i];
    nlohmann::json rj = {{"requirement", i + 1},
                         {"type", trust::RequirementTypeName(v.type)},
                         {"satisfied", v.problem.empty()}};
    if (!v.problem.empty()) rj["problem"] = v.problem;
    requirements.push_back(std::move(rj));
  }
  j["requirements"] = std::move(requirements);
  auto signatures = nlohmann::json::array();
  auto add = [&](std::string_view kind, trust::RequirementType type,
                 const std::vector<std::string>& sources, size_t count) {
    for (size_t k = 0; k < count; ++k) {
      nlohmann::json sj = {{"kind", kind}, {"source", k < sources.size() ? sources[k] : ""}};
      auto verdicts = nlohmann::json::array();
      for (size_t i = 0; i < d.requirements.size(); ++i) {
        const trust::RequirementVerdict& v = d.requirements[i];
        if (v.type != type || k >= v.signatures.size()) continue;
        nlohmann::json vj = {{"requirement", i + 1}, {"accepted", v.signatures[k].empty()}};
        if (!v.signatures[k].empty()) vj["problem"] = v.signatures[k];
        verdicts.push_back(std::move(vj));
      }
      sj["verdicts"] = std::move(verdicts);
      signatures.push_back(std::move(sj));
    }
  };
  add("gpg", trust::RequirementType::kSignedBy, r.gpg_sources, r.found.gpg.size());
  add("sigstore", trust::RequirementType::kSigstoreSigned, r.sigstore_sources,
      r.found.sigstore.size());
  j["signatures"] = std::move(signatures);
  return j;
}

int RunSignatures(const GlobalOptions& global, const InspectFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();
  auto spec = registry::ParseSourceSpec(f.ref);
  if (!spec) return ReportError(spec.error());
  auto platform = PlatformFlag(f.platform);
  if (!platform) return ReportError(platform.error());
  auto client = MakeClientOptions(global, f.registry);
  if (!client) return ReportError(client.error());
  auto trust = LoadTrust(global);
  if (!trust) return ReportError(trust.error());
  auto src = image::OpenSource(*spec, *client);
  if (!src) return ReportError(src.error());
  const std::string what = "inspect --signatures " + (*src)->Describe();
  auto manifest = image::PolicyManifest(**src, platform->value_or(oci::HostPlatform()), cancel);
  if (!manifest) return ReportError(manifest.error().Wrap(what));
  auto report = image::InspectSignatures(**trust, **src, *manifest, cancel);
  if (!report) return ReportError(report.error().Wrap(what));
  std::cout << std::setw(2) << ReportJson(*report) << "\n";
  return kExitOk;
}

int Run(const GlobalOptions& global, const std::string& text) {
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto recs = FindImages(*s->metadata, text);
  if (!recs) return ReportError(recs.error());
  auto out = nlohmann::json::array();
  for (const auto& r : *recs) {
    auto img = image::FromRecord(r);
    if (!img) return ReportError(img.error().Wrap("inspect " + r.name));
    // "labels" shows the record as stored, labels the model does not know
    // included: this is where a damaged or newer record is looked at.
    nlohmann::json j = {{"name", img->name},
                        {"target", oci::DescriptorToJson(img->target)},
                        {"labels", r.labels},
                        {"created_ns", img->created_ns}};
    auto m = BlobJson(*s, image::PlatformManifest(*img));
    if (!m) return ReportError(m.error().Wrap("inspect " + r.name));
    j["manifest"] = std::move(*m);
    if (image::PlatformManifest(*img) != img->target.digest) {
      auto idx = BlobJson(*s, img->target.digest);
      if (idx) j["index"] = std::move(*idx);
    }
    if (!img->config)
      return ReportError(
          common::MakeError(common::Errc::kDataLoss,
                            "inspect " + r.name + ": the image config is not recorded")
              .error());
    auto c = BlobJson(*s, *img->config, Blob::kConfig);
    if (!c) return ReportError(c.error().Wrap("inspect " + r.name));
    j["config"] = std::move(*c);
    out.push_back(std::move(j));
  }
  // Streamed rather than dump()ed: no second copy of a config that is
  // near its limits.
  std::cout << std::setw(2) << (out.size() == 1 ? out[0] : out) << "\n";
  return kExitOk;
}

}  // namespace

void RegisterInspect(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<InspectFlags>();
  auto* cmd =
      app.add_subcommand("inspect", "Show an image's descriptor, manifest and config as JSON");
  cmd->add_option("image", f->ref,
                  "Reference or image id; with --signatures a pull source (REF, oci:DIR[:TAG], "
                  "oci-archive:FILE, docker-archive:FILE)")
      ->required();
  cmd->add_flag("--signatures", f->signatures,
                "Read the image's signatures where its registry keeps them (registries.d "
                "lookaside, sigstore attachments) and show, as JSON, which requirement of the "
                "signature policy each satisfies and whether a pull would be accepted");
  cmd->add_option("--platform", f->platform,
                  "With --signatures: the platform whose manifest is judged (default: this "
                  "machine's)");
  AddRegistryFlags(cmd, f->registry);
  cmd->footer(
      "Without --signatures the image is read from the store. With --signatures nothing is "
      "stored: the manifest is read from the source, and the policy is --signature-policy "
      "(docs/trust.md). The exit status is 0 whether the image would be accepted or not.");
  cmd->callback([&global, &exit_code, f] {
    exit_code = f->signatures ? RunSignatures(global, *f) : Run(global, f->ref);
  });
}

}  // namespace cli
