// The docker-style --format placeholders and the table layout.

#include "common/row_format.h"

#include <gtest/gtest.h>

namespace common {
namespace {

constexpr FormatField kFields[] = {
    {"Repository", "REPOSITORY"}, {"Tag", "TAG"}, {"ID", "IMAGE ID"}, {"Size", "SIZE"}};

const std::vector<std::vector<std::string>> kRows = {
    {"docker.io/library/busybox", "latest", "3f57d9401f8d", "4.3 MB"},
    {"localhost/app", "<none>", "0123456789ab", "1.0 kB"},
};

std::string Render(std::string_view format,
                   const std::vector<std::vector<std::string>>& rows = kRows) {
  auto f = RowFormat::Parse(format, kFields);
  EXPECT_TRUE(f) << f.error().message;
  return f ? f->Render(rows) : "";
}

TEST(RowFormatTest, ReplacesPlaceholdersWithTheRowsValues) {
  EXPECT_EQ(Render("{{.Repository}}:{{.Tag}}"),
            "docker.io/library/busybox:latest\nlocalhost/app:<none>\n");
  EXPECT_EQ(Render("{{ .ID }} is {{.Size}}, {{.ID}}"),
            "3f57d9401f8d is 4.3 MB, 3f57d9401f8d\n0123456789ab is 1.0 kB, 0123456789ab\n");
  EXPECT_EQ(Render("no fields"), "no fields\nno fields\n");
  EXPECT_EQ(Render("{{.Tag}}", {}), "");
}

TEST(RowFormatTest, EscapedTabsAndNewlinesAreUnescapedAndNotAlignedWithoutTable) {
  EXPECT_EQ(Render(R"({{.Tag}}\t{{.ID}})"), "latest\t3f57d9401f8d\n<none>\t0123456789ab\n");
  EXPECT_EQ(Render(R"({{.Tag}}\n{{.ID}})"), "latest\n3f57d9401f8d\n<none>\n0123456789ab\n");
}

TEST(RowFormatTest, TablePrintsAHeaderAndAlignsColumnsAsDocker) {
  EXPECT_EQ(Render(R"(table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}})"),
            "REPOSITORY                  TAG       IMAGE ID       SIZE\n"
            "docker.io/library/busybox   latest    3f57d9401f8d   4.3 MB\n"
            "localhost/app               <none>    0123456789ab   1.0 kB\n");
  // Literal text stays in the header, as docker renders it.
  EXPECT_EQ(Render("table {{.Tag}}!", {{"", "v1", "", ""}}), "TAG!\nv1!\n");
  auto f = RowFormat::Parse("table {{.Tag}}", kFields);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->table());
  EXPECT_FALSE(RowFormat::Parse("tables {{.Tag}}", kFields)->table());
}

TEST(RowFormatTest, UsesTellsWhichFieldsAppear) {
  auto f = RowFormat::Parse("{{.Tag}} {{.Size}}", kFields);
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->Uses(0));
  EXPECT_TRUE(f->Uses(1));
  EXPECT_FALSE(f->Uses(2));
  EXPECT_TRUE(f->Uses(3));
}

TEST(RowFormatTest, UnknownFieldIsAnErrorListingTheFields) {
  auto f = RowFormat::Parse("{{.Repository}} {{.Created}}", kFields);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(f.error().message,
            "format: unknown field `.Created` (fields: .Repository, .Tag, .ID, .Size)");
  // Case matters, as in Go templates.
  EXPECT_FALSE(RowFormat::Parse("{{.tag}}", kFields));
}

TEST(RowFormatTest, TemplateActionsAndBrokenBracesAreErrors) {
  for (const char* bad : {"{{json .}}", "{{.Tag | upper}}", "{{range .}}x{{end}}", "{{.}}",
                          "{{Tag}}", "{{.Tag", "x {{", "", "table", "table  "}) {
    auto f = RowFormat::Parse(bad, kFields);
    ASSERT_FALSE(f) << bad;
    EXPECT_EQ(f.error().code, Errc::kInvalidArgument) << bad;
    EXPECT_TRUE(f.error().message.starts_with("format: ")) << f.error().message;
  }
  EXPECT_EQ(RowFormat::Parse("{{json .}}", kFields).error().message,
            "format: unsupported `{{json .}}`: only {{.Field}} placeholders (fields: .Repository, "
            ".Tag, .ID, .Size)");
}

TEST(AlignColumnsTest, PadsCellsFollowedByATab) {
  EXPECT_EQ(AlignColumns({"a\tbb\tc", "aaaaaaaaaaaa\tb"}),
            "a              bb        c\n"
            "aaaaaaaaaaaa   b\n");
  EXPECT_EQ(AlignColumns({"only"}), "only\n");
  EXPECT_EQ(AlignColumns({}), "");
}

}  // namespace
}  // namespace common
