// `gantry images` on pulled images, in the columns docker, podman and
// crictl users read: REPOSITORY  TAG  IMAGE ID  CREATED  SIZE, one row per
// name (a name pulled by digest has TAG <none>), DIGEST with --digests,
// full ids with --no-trunc, --format placeholders and --json; and SIZE is
// the content `gantry df` shows as CONTENT, with the unpacked snapshots on
// top of it there (issue 13, 6c).

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "common/time_text.h"
#include "fixtures/image_builder.h"
#include "fixtures/registry_fixture.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) out.push_back(line);
  return out;
}

// The cells of a table line: columns are at least 3 spaces apart and no
// value holds two spaces in a row.
std::vector<std::string> Cells(const std::string& line) {
  static const std::regex kGap(" {2,}");
  std::vector<std::string> out;
  for (std::sregex_token_iterator it(line.begin(), line.end(), kGap, -1), end; it != end; ++it)
    out.push_back(*it);
  return out;
}

class PullImagesCli : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
    ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg_));
    const fs::path layout = gantry_->dir() / "layout";
    ASSERT_NO_FATAL_FAILURE(
        PushImage(*reg_, layout, fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
    ASSERT_NO_FATAL_FAILURE(PushLayout(*reg_, layout, "push", "fixture/app:v2"));
    repo_ = reg_->host() + "/fixture/app";
    // Three names of one image: two tags and the digest.
    for (const std::string& name :
         {repo_ + ":v2", repo_ + ":v1", repo_ + "@" + image_.manifest.digest.str()})
      ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name}));
  }

  // Runs `gantry images args…`, expecting exit 0.
  std::string Images(const std::vector<std::string>& args = {}) const {
    std::vector<std::string> argv = {"images"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = gantry_->Run(argv);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return "";
    EXPECT_EQ(r->exit_code, 0) << Describe(*r);
    EXPECT_EQ(r->err, "");
    return r->out;
  }

  std::string Hex12(const common::Digest& d) const { return d.hex().substr(0, 12); }

  // The fixture image's config says it was created at 1700000000
  // (2023-11-14T22:13:20Z); "N units ago" as seen from around now.
  std::vector<std::string> CreatedSinceNow() const {
    const common::WallTime created{std::chrono::seconds(1700000000)};
    const auto now = std::chrono::system_clock::now();
    return {common::TimeAgo(created, now), common::TimeAgo(created, now + std::chrono::minutes(5))};
  }

  int64_t ContentSize() const {
    int64_t n = image_.manifest.size + image_.config.size;
    for (const auto& l : image_.layers) n += l.size;
    return n;
  }

  std::unique_ptr<Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  fixtures::BuiltImage image_;
  std::string repo_;
};

TEST_F(PullImagesCli, DefaultColumnsAreDockers) {
  const auto lines = Lines(Images());
  ASSERT_EQ(lines.size(), 4u) << Images();
  EXPECT_EQ(Cells(lines[0]),
            (std::vector<std::string>{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}))
      << lines[0];
  // Sorted by name: "…/app:v1", "…/app:v2", "…/app@sha256:…" — one row per name.
  const std::vector<std::string> tags = {"v1", "v2", "<none>"};
  const auto created = CreatedSinceNow();
  for (size_t i = 0; i < tags.size(); ++i) {
    auto cells = Cells(lines[i + 1]);
    ASSERT_EQ(cells.size(), 5u) << lines[i + 1];
    EXPECT_EQ(cells[0], repo_);
    EXPECT_EQ(cells[1], tags[i]);
    EXPECT_EQ(cells[2], Hex12(image_.config.digest));
    EXPECT_TRUE(cells[3] == created[0] || cells[3] == created[1]) << cells[3];
    EXPECT_TRUE(std::regex_match(cells[4], std::regex(R"([0-9.]+ (B|kB|MB))"))) << cells[4];
  }
  // `table` alone is the default table.
  EXPECT_EQ(Images({"--format", "table"}), Images());
}

TEST_F(PullImagesCli, DigestsAndNoTrunc) {
  const auto lines = Lines(Images({"--digests", "--no-trunc"}));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(Cells(lines[0]), (std::vector<std::string>{"REPOSITORY", "TAG", "DIGEST", "IMAGE ID",
                                                       "CREATED", "SIZE"}));
  for (size_t i = 1; i < lines.size(); ++i) {
    auto cells = Cells(lines[i]);
    ASSERT_EQ(cells.size(), 6u) << lines[i];
    EXPECT_EQ(cells[2], image_.manifest.digest.str());
    EXPECT_EQ(cells[3], image_.config.digest.str());
  }
}

TEST_F(PullImagesCli, FormatReplacesThePlaceholders) {
  const std::string id = Hex12(image_.config.digest);
  EXPECT_EQ(
      Images({"--format", "{{.Repository}}:{{.Tag}} {{.ID}}"}),
      repo_ + ":v1 " + id + "\n" + repo_ + ":v2 " + id + "\n" + repo_ + ":<none> " + id + "\n");
  EXPECT_EQ(Images({"--format", R"({{.Tag}}\t{{.Digest}}\t{{.CreatedAt}})"}),
            "v1\t" + image_.manifest.digest.str() + "\t2023-11-14 22:13:20 +0000 UTC\n" + "v2\t" +
                image_.manifest.digest.str() + "\t2023-11-14 22:13:20 +0000 UTC\n" + "<none>\t" +
                image_.manifest.digest.str() + "\t2023-11-14 22:13:20 +0000 UTC\n");
  const auto lines = Lines(Images({"--format", R"(table {{.Tag}}\t{{.CreatedSince}})"}));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(Cells(lines[0]), (std::vector<std::string>{"TAG", "CREATED"}));
  EXPECT_EQ(Cells(lines[3])[0], "<none>");
}

TEST_F(PullImagesCli, UnknownFieldIsAUsageErrorNamingIt) {
  auto r = gantry_->Run({"images", "--format", "{{.Repository}} {{.Created}}"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 2) << Describe(*r);
  EXPECT_EQ(r->out, "");
  EXPECT_EQ(r->err,
            "gantry: images: format: unknown field `.Created` (fields: .Repository, .Tag, .ID, "
            ".Digest, .CreatedSince, .CreatedAt, .Size, .Published)\n");
  auto both = gantry_->Run({"images", "--json", "--format", "{{.ID}}"});
  ASSERT_TRUE(both) << both.error().message;
  EXPECT_EQ(both->exit_code, 2) << Describe(*both);
}

TEST_F(PullImagesCli, JsonHasEveryField) {
  nlohmann::json images = gantry_->ImagesJson();
  ASSERT_EQ(images.size(), 3u) << images.dump(2);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& i : images) by_name[i.value("name", "")] = i;
  for (const std::string tag : {"v1", "v2"}) {
    const nlohmann::json& i = by_name[repo_ + ":" + tag];
    EXPECT_EQ(i["repository"], repo_);
    EXPECT_EQ(i["tag"], tag);
  }
  const nlohmann::json& by_digest = by_name[repo_ + "@" + image_.manifest.digest.str()];
  EXPECT_EQ(by_digest["repository"], repo_);
  EXPECT_TRUE(by_digest["tag"].is_null()) << by_digest.dump(2);
  for (const auto& i : images) {
    EXPECT_EQ(i["id"], image_.config.digest.str());
    EXPECT_EQ(i["digest"], image_.manifest.digest.str());
    EXPECT_EQ(i["created"], "2023-11-14T22:13:20Z");
    EXPECT_EQ(i["size"], ContentSize());
    EXPECT_TRUE(i["published"].is_null()) << i.dump(2);  // never published into containerd
  }
}

// The two numbers users compared (issue 13: images said 30.4 MB, df 61.8
// MB): images' SIZE is df's CONTENT, and df's SIZE adds UNPACKED.
TEST_F(PullImagesCli, SizeIsTheContentDfShowsBesideTheUnpackedSnapshots) {
  auto df = gantry_->Run({"df", "--json"});
  ASSERT_TRUE(df) << df.error().message;
  ASSERT_EQ(df->exit_code, 0) << Describe(*df);
  auto doc = nlohmann::json::parse(df->out, nullptr, false);
  ASSERT_EQ(doc["images"].size(), 3u) << df->out;
  for (const auto& i : doc["images"]) {
    EXPECT_EQ(i["content_size"], ContentSize());
    EXPECT_GT(i["snapshot_size"].get<int64_t>(), 0) << "pull unpacks";
    EXPECT_EQ(i["size"].get<int64_t>(),
              i["content_size"].get<int64_t>() + i["snapshot_size"].get<int64_t>());
  }
  const auto image_lines = Lines(Images());
  ASSERT_EQ(image_lines.size(), 4u);
  const auto image_cells = Cells(image_lines[1]);
  ASSERT_EQ(image_cells.size(), 5u) << image_lines[1];
  const std::string images_size = image_cells[4];
  auto table = gantry_->Run({"df"});
  ASSERT_TRUE(table) << table.error().message;
  const auto lines = Lines(table->out);
  auto header = std::find_if(lines.begin(), lines.end(),
                             [](const std::string& l) { return l.starts_with("REPOSITORY:TAG"); });
  ASSERT_NE(header, lines.end()) << table->out;
  const auto columns = Cells(*header);
  EXPECT_EQ(columns,
            (std::vector<std::string>{"REPOSITORY:TAG", "IMAGE ID", "CONTENT", "UNPACKED", "SIZE",
                                      "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"}));
  ASSERT_NE(header + 1, lines.end());
  const auto row = Cells(*(header + 1));
  ASSERT_EQ(row.size(), columns.size()) << *(header + 1);
  EXPECT_EQ(row[2], images_size) << "df's CONTENT is images' SIZE";
  EXPECT_NE(row[4], images_size) << "df's SIZE adds the unpacked snapshots";
}

}  // namespace
}  // namespace pulltest
