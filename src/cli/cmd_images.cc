// gantry images [--digests] [--no-trunc] [--format F | --json]: the image
// records in the store, one row per name, in docker's columns.

#include <array>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/store_open.h"
#include "common/env.h"
#include "common/row_format.h"
#include "common/time_text.h"
#include "ctrpublish/publish.h"
#include "image/image_record.h"
#include "registry/reference.h"
#include "upkeep/image_size.h"

namespace cli {
namespace {

struct ImagesOptions {
  bool digests = false;
  bool no_trunc = false;
  bool json = false;
  std::string format;
};

// The --format fields, in the order of a row's values.
enum Field {
  kRepository,
  kTag,
  kId,
  kDigest,
  kCreatedSince,
  kCreatedAt,
  kSize,
  kPublished,
  kFieldCount
};
constexpr common::FormatField kFields[kFieldCount] = {{"Repository", "REPOSITORY"},
                                                      {"Tag", "TAG"},
                                                      {"ID", "IMAGE ID"},
                                                      {"Digest", "DIGEST"},
                                                      {"CreatedSince", "CREATED"},
                                                      {"CreatedAt", "CREATED AT"},
                                                      {"Size", "SIZE"},
                                                      {"Published", "PUBLISHED"}};

// docker's default tables.
constexpr char kDefaultTable[] =
    "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";
constexpr char kDigestsTable[] =
    "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";

// The default tables gain this column when an image has been published
// into containerd (gantry serve/pull/publish --containerd).
constexpr char kPublishedColumn[] = "\\t{{.Published}}";
// A state's reason is cut to this many characters in a table (not with
// --no-trunc, nor in --json).
constexpr size_t kPublishedWidth = 60;

constexpr char kNone[] = "<none>";

// An image config's `created`: as written, and parsed.
struct Created {
  std::string text;
  common::WallTime at;
};

// What one image record shows.
struct Row {
  image::Image image;
  std::string repository, tag;
  std::string id;                  // image::ImageId: the config digest, else the target's
  std::optional<Created> created;  // when the config has an RFC 3339 `created`
  int64_t size = 0;                // upkeep::ImageContentSize
  std::string published;           // ctrpublish::kLabelPublished; "" when never published
};

// REPOSITORY and TAG from the record's name, which is a normalised
// reference. The repository is kept in full ("docker.io/library/busybox",
// as podman and crictl print it, not docker's "busybox"): it is what the
// store is keyed by and what other commands take back. A name pulled by
// digest has no tag: `<none>`, as docker shows it.
void SplitName(const std::string& name, Row* row) {
  auto ref = registry::ImageRef::Parse(name);
  if (!ref) {  // not written by gantry; show it as it is
    row->repository = name;
    row->tag = kNone;
    return;
  }
  row->repository = ref->name();
  row->tag = ref->tag().value_or(kNone);
}

// The image config's `created` (image::ImageCreated: the record's, else
// read from the config, once per config). An unreadable config (fsck
// reports those) or a missing or malformed time shows as unknown rather
// than failing the listing.
class CreatedTimes {
 public:
  explicit CreatedTimes(const store::ContentStore& content) : content_(content) {}
  std::optional<Created> Of(const image::Image& img) {
    if (img.config_created) return Parse(*img.config_created);
    auto [it, inserted] = cache_.try_emplace(image::ImageId(img).str());
    if (inserted) {
      if (auto text = upkeep::ImageCreated(content_, img)) it->second = Parse(*text);
    }
    return it->second;
  }

 private:
  static std::optional<Created> Parse(const std::string& text) {
    if (auto at = common::ParseRfc3339(text)) return Created{text, *at};
    return std::nullopt;
  }

  const store::ContentStore& content_;
  std::map<std::string, std::optional<Created>> cache_;  // by config, for old records
};

// What to compute for each row: the table's fields its format uses, or
// every field for --json.
struct Needs {
  std::array<bool, kFieldCount> field{};  // the table's
  bool json = false;
  bool created() const { return json || field[kCreatedSince] || field[kCreatedAt]; }
  bool content_size() const { return json || field[kSize]; }
};

// The row of one record; the config time and the size only when asked for
// (records written before gantry kept them cost a blob read each).
Row RowOf(const store::ImageRecord& r, const store::ContentStore& content, CreatedTimes& times,
          const Needs& needs) {
  Row row;
  auto img = image::FromRecord(r);
  // Listed all the same, by what its columns say (fsck reports it).
  if (!img) std::cerr << "gantry: warning: " << img.error().message << "\n";
  row.image = img ? std::move(*img) : image::FromRecordColumns(r);
  SplitName(row.image.name, &row);
  row.id = image::ImageId(row.image).str();
  if (auto p = r.labels.find(std::string(ctrpublish::kLabelPublished)); p != r.labels.end())
    row.published = p->second;
  if (needs.created()) row.created = times.Of(row.image);
  if (needs.content_size()) row.size = upkeep::ImageContentSize(content, row.image);
  return row;
}

std::string ShortId(const std::string& id, bool no_trunc) {
  if (no_trunc) return id;
  const size_t colon = id.find(':');
  return id.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}

nlohmann::json RowJson(const Row& row) {
  const image::Image& r = row.image;
  return {{"name", r.name},
          {"repository", row.repository},
          {"tag", row.tag == kNone ? nlohmann::json(nullptr) : nlohmann::json(row.tag)},
          {"id", row.id},
          {"digest", r.target.digest.str()},
          {"target", oci::DescriptorToJson(r.target)},
          {"config", r.config ? r.config->str() : std::string()},
          {"platform", r.platform},
          {"created", row.created ? nlohmann::json(row.created->text) : nlohmann::json(nullptr)},
          {"size", row.size},
          {"created_ns", r.created_ns},
          {"published",
           row.published.empty() ? nlohmann::json(nullptr) : nlohmann::json(row.published)}};
}

// A table row's values, for the fields the format uses, into `v` (one
// per field).
void RowValues(const Row& row, const Needs& needs, bool no_trunc, common::WallTime now,
               std::vector<std::string>& v) {
  if (needs.field[kRepository]) v[kRepository] = row.repository;
  if (needs.field[kTag]) v[kTag] = row.tag;
  if (needs.field[kId]) v[kId] = ShortId(row.id, no_trunc);
  if (needs.field[kDigest]) v[kDigest] = row.image.target.digest.str();
  std::optional<common::WallTime> at;
  if (row.created) at = row.created->at;
  if (needs.field[kCreatedSince]) v[kCreatedSince] = common::TimeAgo(at, now);
  if (needs.field[kCreatedAt]) v[kCreatedAt] = common::FormatUtc(at);
  if (needs.field[kSize]) v[kSize] = HumanBytes(row.size);
  if (needs.field[kPublished]) {
    v[kPublished] = row.published.empty() ? "-" : row.published;
    if (!no_trunc && v[kPublished].size() > kPublishedWidth)
      v[kPublished] = v[kPublished].substr(0, kPublishedWidth - 3) + "...";
  }
}

int Run(const GlobalOptions& global, const ImagesOptions& o) {
  std::optional<common::RowFormat> format;
  // The default table, with PUBLISHED: used when a row has a state.
  std::optional<common::RowFormat> published_format;
  const bool default_table = o.format.empty() || o.format == "table";
  if (!o.json) {
    std::string text = o.format;
    if (default_table) text = o.digests ? kDigestsTable : kDefaultTable;
    auto f = common::RowFormat::Parse(text, kFields);
    if (!f) return ReportError(f.error().Wrap("images"));
    format = std::move(*f);
    if (default_table) {
      auto p = common::RowFormat::Parse(text + kPublishedColumn, kFields);
      if (!p) return ReportError(p.error().Wrap("images"));
      published_format = std::move(*p);
    }
  }
  Needs needs{.field = {}, .json = o.json};
  for (size_t f = 0; f < kFieldCount && format; ++f) needs.field[f] = format->Uses(f);
  if (published_format) needs.field[kPublished] = true;
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  // One record at a time: a store of many images is never all in memory.
  CreatedTimes times(*s->content);
  const common::WallTime now = common::DefaultEnv()->WallNow();
  auto json = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;  // every row's values, one per field
  bool any_published = false;
  auto listed = s->metadata->ForEachImage([&](store::ImageRecord&& r) -> common::Status {
    const Row row = RowOf(r, *s->content, times, needs);
    if (o.json) {
      json.push_back(RowJson(row));
    } else {
      std::vector<std::string> values(kFieldCount);
      RowValues(row, needs, o.no_trunc, now, values);
      rows.push_back(std::move(values));
      any_published = any_published || !row.published.empty();
    }
    return {};
  });
  if (!listed) return ReportError(listed.error());
  if (o.json) {
    std::cout << json.dump(2) << "\n";
    return kExitOk;
  }
  const common::RowFormat& chosen = any_published && published_format ? *published_format : *format;
  std::vector<std::string> lines;
  lines.reserve(rows.size());
  for (const auto& values : rows) lines.push_back(chosen.Line(values));
  std::fputs(chosen.RenderLines(std::move(lines)).c_str(), stdout);
  return kExitOk;
}

}  // namespace

void RegisterImages(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto o = std::make_shared<ImagesOptions>();
  auto* cmd = app.add_subcommand("images", "List images in the store");
  cmd->footer(
      "One row per name, sorted by name. REPOSITORY and TAG come from the name (TAG <none>\n"
      "for a name pulled by digest). IMAGE ID is the config digest (12 hex digits; full with\n"
      "--no-trunc). CREATED is when the image was built, from its config (N/A when it has no\n"
      "time). SIZE is the image's content in the store: manifests, config and compressed\n"
      "layers, as docker's SIZE; layers shared with other images count in each. `gantry df`\n"
      "shows it as CONTENT, with the unpacked snapshots (UNPACKED) on top.\n"
      "PUBLISHED (shown once an image has been published into containerd by gantry serve,\n"
      "pull or publish --containerd): yes, pending: REASON (gantry serve retries it) or\n"
      "failed: REASON; - when never published.\n"
      "\n"
      "--format takes docker-style placeholders: {{.Repository}} {{.Tag}} {{.ID}}\n"
      "{{.Digest}} {{.CreatedSince}} {{.CreatedAt}} (in UTC) {{.Size}} {{.Published}}; \\t\n"
      "and \\n are a tab and a newline; a leading `table` prints a header and aligns the\n"
      "columns. Nothing else of Go templates is supported.\n"
      "--json prints every field: name, repository, tag (null without one), id, digest,\n"
      "target, config, platform, created (the config's, RFC 3339, or null), size (bytes,\n"
      "as SIZE), created_ns (when the name was recorded in this store) and published (the\n"
      "PUBLISHED state in full, or null).");
  cmd->add_flag("--digests", o->digests,
                "Show the digest each name points at (index or manifest, as pulled)");
  cmd->add_flag("--no-trunc", o->no_trunc, "Show full image ids");
  auto* json = cmd->add_flag("--json", o->json, "Print JSON");
  cmd->add_option("--format", o->format,
                  "Print with a template: `table {{.Repository}}\\t{{.Size}}` (see below)")
      ->excludes(json);
  cmd->callback([&global, &exit_code, o] { exit_code = Run(global, *o); });
}

}  // namespace cli
