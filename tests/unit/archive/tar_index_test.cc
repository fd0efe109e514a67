// The archive tar walker (archive/tar_index.h) on tars built here, and the
// archive pull sources' spec syntax (registry::ParseSourceSpec).

#include "archive/tar_index.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "registry/source.h"

namespace archives {
namespace {

class TarIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-tarindex-");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
  }
  // Writes `bytes` to a file and indexes it.
  common::Result<TarIndex> Index(const std::string& bytes) {
    auto path = dir_.path() / "a.tar";
    TRY(common::AtomicWriteFile(path, bytes));
    ASSIGN_OR_RETURN(common::UniqueFd fd, common::Open(path.string(), O_RDONLY));
    return IndexTar(fd.get(), path.string());
  }
  static std::string Tar(const std::vector<fixtures::TarEntry>& entries) {
    auto t = fixtures::BuildTar(entries);
    EXPECT_TRUE(t) << t.error().message;
    return t ? *t : "";
  }
  common::TempDir dir_;
};

TEST_F(TarIndexTest, FindsEveryFileWithItsOffsetIncludingLongNames) {
  std::string long_name = std::string(150, 'x') + "/" + std::string(120, 'y') + ".tar";
  std::string tar = Tar({fixtures::Dir("d/"), fixtures::File("./d//manifest.json", "[1]"),
                         fixtures::File(long_name, std::string(1000, 'z'))});
  auto index = Index(tar);
  ASSERT_TRUE(index) << index.error().message;
  ASSERT_EQ(index->size(), 2u);
  const TarEntry& m = index->at("d/manifest.json");
  EXPECT_EQ(tar.substr(static_cast<size_t>(m.offset), static_cast<size_t>(m.size)), "[1]");
  const TarEntry& l = index->at(long_name);
  EXPECT_EQ(l.size, 1000);
  EXPECT_EQ(tar.substr(static_cast<size_t>(l.offset), 1000), std::string(1000, 'z'));
}

TEST_F(TarIndexTest, TruncatedAnywhereIsDataLoss) {
  std::string tar = Tar({fixtures::File("a", std::string(5000, 'a')), fixtures::File("b", "b")});
  for (size_t cut : {size_t{100}, size_t{512}, size_t{3000}, tar.size() - 1024}) {
    auto index = Index(tar.substr(0, cut));
    ASSERT_FALSE(index) << "cut at " << cut;
    EXPECT_EQ(index.error().code, common::Errc::kDataLoss) << index.error().message;
    EXPECT_NE(index.error().message.find("truncated"), std::string::npos);
  }
}

TEST_F(TarIndexTest, EscapingNamesAreRefused) {
  for (std::string name : {"../x", "/etc/passwd", "a/../../x"}) {
    auto index = Index(Tar({fixtures::File(name, "x")}));
    ASSERT_FALSE(index) << name;
    EXPECT_EQ(index.error().code, common::Errc::kInvalidArgument);
    EXPECT_NE(index.error().message.find("`" + name + "` escapes the archive"), std::string::npos)
        << index.error().message;
  }
}

TEST_F(TarIndexTest, ReadsAPipeInOrder) {
  std::string tar =
      Tar({fixtures::File("a", "alpha"), fixtures::File("b", std::string(70000, 'b'))});
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  common::UniqueFd rd(p[0]), wr(p[1]);
  std::thread writer([&] {
    (void)common::WriteAll(wr.get(), tar);
    wr = common::UniqueFd();
  });
  std::vector<std::string> seen;
  auto st =
      WalkTar(rd.get(), "pipe", [&](const TarEntry& e, const BodyReader& read) -> common::Status {
        std::string body(4, '\0');
        ASSIGN_OR_RETURN(size_t n, read(body.data(), body.size()));
        seen.push_back(e.name + "=" + body.substr(0, n));
        return common::Status{};
      });
  writer.join();
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(seen, (std::vector<std::string>{"a=alph", "b=bbbb"}));
}

TEST(ArchiveSpec, ParsesLikeSkopeo) {
  auto d = registry::ParseSourceSpec("docker-archive:/x/My.tar:app:v1");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->kind, registry::SourceSpec::Kind::kDockerArchive);
  EXPECT_EQ(d->layout_dir, "/x/My.tar");
  EXPECT_EQ(d->layout_tag, "app:v1");
  EXPECT_EQ(d->ref.str(), "docker.io/library/app:v1");  // a RepoTag is a docker reference
  auto n = registry::ParseSourceSpec("docker-archive:/x/My.tar");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->ref.str(), "localhost/my-tar:latest");
  auto o = registry::ParseSourceSpec("oci-archive:/x/img.tar:v2");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->kind, registry::SourceSpec::Kind::kOciArchive);
  EXPECT_EQ(o->ref.str(), "localhost/img-tar:v2");
  auto named = registry::ParseSourceSpec("oci-archive:/x/img.tar:@1", "app:v9");
  ASSERT_TRUE(named);
  EXPECT_EQ(named->layout_tag, "@1");
  EXPECT_EQ(named->ref.str(), "localhost/app:v9");
  auto empty = registry::ParseSourceSpec("docker-archive::a");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("empty file"), std::string::npos);
}

}  // namespace
}  // namespace archives
