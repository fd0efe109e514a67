#include "registry/credentials.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/fd.h"
#include "common/fs.h"
#include "registry/credentials_internal.h"

namespace registry {
namespace {

namespace fs = std::filesystem;
namespace ci = credentials_internal;
using common::Errc;
using Json = nlohmann::ordered_json;

// A docker-credential-<name> that follows the helper protocol, keeping one
// file per server URL under <dir>/db-<name> and appending each call to
// <dir>/calls.log as "<name> <action> <stdin>".
constexpr std::string_view kFakeHelper = R"SH(#!/bin/sh
name="$(basename "$0")"
name="${name#docker-credential-}"
dir="$(dirname "$0")"
db="$dir/db-$name"
action="$1"
input="$(cat)"
echo "$name $action $input" >> "$dir/calls.log"
mkdir -p "$db"
case "$action" in
  store)
    server="$(printf %s "$input" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')"
    printf %s "$input" > "$db/$(printf %s "$server" | tr -c 'A-Za-z0-9.' '_')"
    exit 0 ;;
  get|erase)
    f="$db/$(printf %s "$input" | tr -c 'A-Za-z0-9.' '_')"
    if [ ! -f "$f" ]; then echo "credentials not found in native keychain"; exit 1; fi
    if [ "$action" = get ]; then cat "$f"; else rm "$f"; fi
    exit 0 ;;
esac
echo "unknown action $action" >&2
exit 2
)SH";

std::string Sanitize(std::string_view server) {
  std::string out(server);
  for (char& c : out) {
    bool keep =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.';
    if (!keep) c = '_';
  }
  return out;
}

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = common::TempDir::Create("creds-test");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    helper_dir_ = dir_.path() / "bin";
    ASSERT_TRUE(common::MkdirAll(helper_dir_));
    docker_config_ = dir_.path() / "docker" / "config.json";
    containers_auth_ = dir_.path() / "run" / "containers" / "auth.json";
  }

  CredentialStore Store(std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
    return CredentialStore({.docker_config = docker_config_,
                            .containers_auth = containers_auth_,
                            .helper_dir = helper_dir_,
                            .helper_timeout = timeout});
  }

  static void Write(const fs::path& path, std::string_view text, mode_t mode = 0644) {
    ASSERT_TRUE(common::MkdirAll(path.parent_path()));
    ASSERT_TRUE(common::AtomicWriteFile(path, text, mode));
  }
  void WriteDocker(const Json& doc) const { Write(docker_config_, doc.dump()); }
  void WriteContainers(const Json& doc) const { Write(containers_auth_, doc.dump()); }

  static Json ReadJson(const fs::path& path) {
    auto text = common::ReadFile(path);
    EXPECT_TRUE(text) << path;
    return text ? Json::parse(*text) : Json();
  }

  void InstallHelper(std::string_view name, std::string_view script = kFakeHelper) const {
    Write(helper_dir_ / ("docker-credential-" + std::string(name)), script, 0755);
  }
  // Seeds the fake helper's store as `store` would.
  void SeedHelper(std::string_view name, std::string_view server, std::string_view user,
                  std::string_view secret) const {
    Json doc = {{"ServerURL", server}, {"Username", user}, {"Secret", secret}};
    Write(helper_dir_ / ("db-" + std::string(name)) / Sanitize(server), doc.dump());
  }
  std::optional<Json> HelperEntry(std::string_view name, std::string_view server) const {
    fs::path p = helper_dir_ / ("db-" + std::string(name)) / Sanitize(server);
    if (!fs::exists(p)) return std::nullopt;
    return ReadJson(p);
  }
  std::string CallLog() const {
    auto text = common::ReadFile(helper_dir_ / "calls.log");
    return text ? *text : std::string();
  }

  std::optional<Credentials> MustLookup(std::string_view host) const {
    auto r = Store().Lookup(host);
    EXPECT_TRUE(r) << host << ": " << r.error().message;
    return r ? *r : std::nullopt;
  }

  static Credentials UserPass(std::string u, std::string p) {
    Credentials c;
    c.username = std::move(u);
    c.password = std::move(p);
    return c;
  }

  common::TempDir dir_;
  fs::path helper_dir_;
  fs::path docker_config_;
  fs::path containers_auth_;
};

// --- auths in files --------------------------------------------------------

TEST_F(CredentialsTest, NothingConfiguredIsNullopt) {
  EXPECT_EQ(MustLookup("127.0.0.1:5000"), std::nullopt);
  WriteDocker({{"auths", {{"other:5000", {{"auth", ci::Base64Encode("a:b")}}}}}});
  EXPECT_EQ(MustLookup("127.0.0.1:5000"), std::nullopt);
}

TEST_F(CredentialsTest, EmptyDockerConfigIsAccepted) {
  Write(docker_config_, "\n");
  EXPECT_EQ(MustLookup("127.0.0.1:5000"), std::nullopt);
}

TEST_F(CredentialsTest, Base64AuthSplitsAtFirstColon) {
  WriteDocker({{"auths", {{"127.0.0.1:5000", {{"auth", ci::Base64Encode("alice:pa:ss")}}}}}});
  EXPECT_EQ(MustLookup("127.0.0.1:5000"), UserPass("alice", "pa:ss"));
}

TEST_F(CredentialsTest, UsernamePasswordFields) {
  WriteDocker({{"auths", {{"reg.example", {{"username", "bob"}, {"password", "pw"}}}}}});
  EXPECT_EQ(MustLookup("reg.example"), UserPass("bob", "pw"));
}

TEST_F(CredentialsTest, AuthWinsOverSeparateFields) {
  WriteDocker(
      {{"auths",
        {{"reg.example",
          {{"auth", ci::Base64Encode("u1:p1")}, {"username", "u2"}, {"password", "p2"}}}}}});
  EXPECT_EQ(MustLookup("reg.example"), UserPass("u1", "p1"));
}

TEST_F(CredentialsTest, IdentityAndRegistryTokens) {
  WriteDocker({{"auths",
                {{"a.example", {{"identitytoken", "refresh-1"}}},
                 {"b.example", {{"registrytoken", "bearer-2"}}}}}});
  auto a = MustLookup("a.example");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->identity_token, "refresh-1");
  EXPECT_TRUE(a->username.empty());
  auto b = MustLookup("b.example");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->registry_token, "bearer-2");
}

TEST_F(CredentialsTest, EmptyEntryIsNoCredentials) {
  WriteDocker({{"auths", {{"reg.example", Json::object()}}}});
  EXPECT_EQ(MustLookup("reg.example"), std::nullopt);
}

TEST_F(CredentialsTest, DockerHubAliases) {
  WriteDocker(
      {{"auths", {{"https://index.docker.io/v1/", {{"auth", ci::Base64Encode("hub:pw")}}}}}});
  for (std::string_view host :
       {"docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"})
    EXPECT_EQ(MustLookup(host), UserPass("hub", "pw")) << host;
}

TEST_F(CredentialsTest, DockerHubShortKeyInContainersAuth) {
  WriteContainers({{"auths", {{"docker.io", {{"auth", ci::Base64Encode("pod:man")}}}}}});
  EXPECT_EQ(MustLookup("registry-1.docker.io"), UserPass("pod", "man"));
}

TEST_F(CredentialsTest, UrlStyleKeys) {
  WriteDocker({{"auths",
                {{"https://ghcr.io/", {{"auth", ci::Base64Encode("g:1")}}},
                 {"quay.io/v2/", {{"auth", ci::Base64Encode("q:2")}}},
                 {"http://10.0.0.1:5000/v1/", {{"auth", ci::Base64Encode("l:3")}}},
                 {"example.com/org/app", {{"auth", ci::Base64Encode("ns:4")}}}}}});
  EXPECT_EQ(MustLookup("ghcr.io"), UserPass("g", "1"));
  EXPECT_EQ(MustLookup("quay.io"), UserPass("q", "2"));
  EXPECT_EQ(MustLookup("10.0.0.1:5000"), UserPass("l", "3"));
  // A namespace-scoped key is not credentials for the whole host.
  EXPECT_EQ(MustLookup("example.com"), std::nullopt);
}

TEST_F(CredentialsTest, ExactKeyWinsOverAlias) {
  WriteDocker({{"auths",
                {{"https://reg.example/", {{"auth", ci::Base64Encode("old:1")}}},
                 {"reg.example", {{"auth", ci::Base64Encode("new:2")}}}}}});
  EXPECT_EQ(MustLookup("reg.example"), UserPass("new", "2"));
}

TEST_F(CredentialsTest, ContainersAuthIsTheFallback) {
  WriteContainers({{"auths",
                    {{"reg.example", {{"auth", ci::Base64Encode("c:1")}}},
                     {"only.example", {{"auth", ci::Base64Encode("c:2")}}}}}});
  EXPECT_EQ(MustLookup("reg.example"), UserPass("c", "1"));
  WriteDocker({{"auths", {{"reg.example", {{"auth", ci::Base64Encode("d:1")}}}}}});
  EXPECT_EQ(MustLookup("reg.example"), UserPass("d", "1"));
  EXPECT_EQ(MustLookup("only.example"), UserPass("c", "2"));
}

TEST_F(CredentialsTest, MalformedDockerConfigNamesTheFile) {
  Write(docker_config_, R"({"auths": {"reg.example": {"auth": "c2VjcmV0)");
  auto r = Store().Lookup("reg.example");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find(docker_config_.string()), std::string::npos)
      << r.error().message;
  // The parser's excerpt of the input (possibly a secret) is not echoed.
  EXPECT_EQ(r.error().message.find("c2VjcmV0"), std::string::npos) << r.error().message;
}

TEST_F(CredentialsTest, MalformedContainersAuthNamesTheFile) {
  Write(containers_auth_, "[1, 2");
  auto r = Store().Lookup("reg.example");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find(containers_auth_.string()), std::string::npos)
      << r.error().message;
}

TEST_F(CredentialsTest, WrongShapesAreInvalidArgument) {
  struct Case {
    const char* name;
    Json doc;
  };
  const Case cases[] = {
      {"top level array", Json::array({1})},
      {"auths not object", {{"auths", "x"}}},
      {"entry not object", {{"auths", {{"reg.example", 1}}}}},
      {"auth not string", {{"auths", {{"reg.example", {{"auth", 5}}}}}}},
      {"auth not base64", {{"auths", {{"reg.example", {{"auth", "!!!"}}}}}}},
      {"auth without colon",
       {{"auths", {{"reg.example", {{"auth", ci::Base64Encode("nocolon")}}}}}}},
      {"credsStore not string", {{"credsStore", 1}}},
      {"credHelpers not object", {{"credHelpers", "x"}}},
      {"helper name with slash", {{"credsStore", "../../bin/sh"}}},
  };
  for (const Case& c : cases) {
    WriteDocker(c.doc);
    auto r = Store().Lookup("reg.example");
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << c.name << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(docker_config_.string()), std::string::npos)
        << c.name << ": " << r.error().message;
  }
}

TEST_F(CredentialsTest, InvalidHostIsRejected) {
  for (std::string_view host : {"", "reg.example\nother", "reg example", "quay.io/org/app"}) {
    auto r = Store().Lookup(host);
    ASSERT_FALSE(r) << host;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << host;
  }
}

// --- credential helpers ----------------------------------------------------

TEST_F(CredentialsTest, CredHelperGet) {
  InstallHelper("fake");
  SeedHelper("fake", "127.0.0.1:5000", "helper-user", "helper-pw");
  WriteDocker({{"credHelpers", {{"127.0.0.1:5000", "fake"}}},
               {"auths", {{"127.0.0.1:5000", {{"auth", ci::Base64Encode("file:pw")}}}}}});
  EXPECT_EQ(MustLookup("127.0.0.1:5000"), UserPass("helper-user", "helper-pw"));
  EXPECT_NE(CallLog().find("fake get 127.0.0.1:5000"), std::string::npos) << CallLog();
}

TEST_F(CredentialsTest, HelperTokenUsernameMeansIdentityToken) {
  InstallHelper("fake");
  SeedHelper("fake", "https://index.docker.io/v1/", "<token>", "refresh");
  WriteDocker({{"credsStore", "fake"}});
  auto c = MustLookup("docker.io");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->identity_token, "refresh");
  EXPECT_TRUE(c->username.empty());
  EXPECT_TRUE(c->password.empty());
  // Docker Hub is asked for under docker's server URL.
  EXPECT_NE(CallLog().find("fake get https://index.docker.io/v1/"), std::string::npos) << CallLog();
}

TEST_F(CredentialsTest, CredHelpersTakePrecedenceOverCredsStore) {
  InstallHelper("perhost");
  InstallHelper("global");
  SeedHelper("perhost", "reg.example", "per", "host");
  SeedHelper("global", "reg.example", "glo", "bal");
  SeedHelper("global", "other.example", "glo", "other");
  WriteDocker({{"credsStore", "global"}, {"credHelpers", {{"reg.example", "perhost"}}}});
  EXPECT_EQ(MustLookup("reg.example"), UserPass("per", "host"));
  EXPECT_EQ(CallLog().find("global get reg.example"), std::string::npos) << CallLog();
  EXPECT_EQ(MustLookup("other.example"), UserPass("glo", "other"));
  EXPECT_EQ(CallLog().find("perhost get other.example"), std::string::npos) << CallLog();
}

TEST_F(CredentialsTest, HelperNotFoundFallsThrough) {
  InstallHelper("perhost");
  InstallHelper("global");
  SeedHelper("global", "reg.example", "glo", "bal");
  WriteDocker({{"credsStore", "global"},
               {"credHelpers", {{"reg.example", "perhost"}, {"file.example", "perhost"}}},
               {"auths", {{"file.example", {{"auth", ci::Base64Encode("f:1")}}}}}});
  EXPECT_EQ(MustLookup("reg.example"), UserPass("glo", "bal"));
  EXPECT_EQ(MustLookup("file.example"), UserPass("f", "1"));
  EXPECT_EQ(MustLookup("none.example"), std::nullopt);
}

TEST_F(CredentialsTest, FailingHelperIsUnavailableNamingIt) {
  InstallHelper("broken", "#!/bin/sh\necho 'keychain is locked' >&2\nexit 3\n");
  WriteDocker({{"credsStore", "broken"}});
  auto r = Store().Lookup("reg.example");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kUnavailable);
  EXPECT_NE(r.error().message.find("docker-credential-broken"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("keychain is locked"), std::string::npos) << r.error().message;
}

TEST_F(CredentialsTest, MissingHelperIsUnavailableNamingIt) {
  WriteDocker({{"credsStore", "absent"}});
  auto r = Store().Lookup("reg.example");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kUnavailable);
  EXPECT_NE(r.error().message.find("docker-credential-absent"), std::string::npos)
      << r.error().message;
}

TEST_F(CredentialsTest, HelperPrintingGarbageIsUnavailable) {
  InstallHelper("garbage", "#!/bin/sh\ncat >/dev/null\necho not-json\n");
  WriteDocker({{"credsStore", "garbage"}});
  auto r = Store().Lookup("reg.example");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kUnavailable);
  EXPECT_NE(r.error().message.find("docker-credential-garbage"), std::string::npos);
}

TEST_F(CredentialsTest, StalledHelperIsKilledAtTheTimeout) {
  InstallHelper("stall", "#!/bin/sh\nexec sleep 60\n");
  WriteDocker({{"credsStore", "stall"}});
  auto start = std::chrono::steady_clock::now();
  auto r = Store(std::chrono::milliseconds(200)).Lookup("reg.example");
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kUnavailable);
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_LT(elapsed, std::chrono::seconds(30));
}

TEST_F(CredentialsTest, ChildThatIgnoresItsInputDoesNotRaiseSigpipe) {
  // Regression: writing a large stdin to a child that exits without reading
  // it must surface as a result, not kill the test with SIGPIPE.
  std::string input(1 << 20, 'x');
  auto r = ci::RunProcess({.argv = {"/bin/sh", "-c", "exit 7"}, .input = input});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_status, 7);
}

TEST_F(CredentialsTest, RunProcessCapturesBothStreams) {
  auto r = ci::RunProcess({.argv = {"/bin/sh", "-c", "cat; echo err >&2"}, .input = "hello"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_status, 0);
  EXPECT_EQ(r->out, "hello");
  EXPECT_EQ(r->err, "err\n");
}

// --- login / logout --------------------------------------------------------

TEST_F(CredentialsTest, LoginPreservesOtherKeysAndSetsMode0600) {
  Json original = Json::parse(R"({
    "psFormat": "table {{.ID}}",
    "auths": {"other.example": {"auth": "b3RoZXI6cHc=", "email": "x@y"}},
    "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
    "experimental": "enabled"
  })");
  WriteDocker(original);
  ASSERT_TRUE(Store().Login("127.0.0.1:5000", UserPass("alice", "pw")));

  Json got = ReadJson(docker_config_);
  EXPECT_EQ(got["psFormat"], original["psFormat"]);
  EXPECT_EQ(got["proxies"], original["proxies"]);
  EXPECT_EQ(got["experimental"], original["experimental"]);
  EXPECT_EQ(got["auths"]["other.example"], original["auths"]["other.example"]);
  EXPECT_EQ(got["auths"]["127.0.0.1:5000"]["auth"], ci::Base64Encode("alice:pw"));
  // Key order is kept: the user's file does not get reshuffled.
  std::vector<std::string> keys;
  for (auto it = got.begin(); it != got.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"psFormat", "auths", "proxies", "experimental"}));

  struct stat st {};
  ASSERT_EQ(::stat(docker_config_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(MustLookup("127.0.0.1:5000"), UserPass("alice", "pw"));
}

TEST_F(CredentialsTest, LoginCreatesDirectory0700) {
  docker_config_ = dir_.path() / "fresh" / ".docker" / "config.json";
  ASSERT_TRUE(Store().Login("docker.io", UserPass("hub", "pw")));
  struct stat st {};
  ASSERT_EQ(::stat(docker_config_.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(docker_config_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Json got = ReadJson(docker_config_);
  EXPECT_EQ(got["auths"]["https://index.docker.io/v1/"]["auth"], ci::Base64Encode("hub:pw"));
  EXPECT_EQ(MustLookup("index.docker.io"), UserPass("hub", "pw"));
}

TEST_F(CredentialsTest, LoginReplacesAliases) {
  WriteDocker({{"auths",
                {{"https://reg.example/", {{"auth", ci::Base64Encode("old:1")}}},
                 {"reg.example/v2/", {{"auth", ci::Base64Encode("old:2")}}}}}});
  ASSERT_TRUE(Store().Login("reg.example", UserPass("new", "3")));
  Json got = ReadJson(docker_config_);
  EXPECT_EQ(got["auths"].size(), 1u) << got.dump();
  EXPECT_EQ(MustLookup("reg.example"), UserPass("new", "3"));
}

TEST_F(CredentialsTest, LoginStoresIdentityToken) {
  Credentials c;
  c.identity_token = "refresh";
  ASSERT_TRUE(Store().Login("reg.example", c));
  EXPECT_EQ(ReadJson(docker_config_)["auths"]["reg.example"]["identitytoken"], "refresh");
  EXPECT_EQ(MustLookup("reg.example"), c);
}

TEST_F(CredentialsTest, LoginWithCredsStoreKeepsSecretOutOfTheFile) {
  InstallHelper("fake");
  WriteDocker({{"credsStore", "fake"},
               {"auths", {{"reg.example", {{"auth", ci::Base64Encode("stale:pw")}}}}}});
  ASSERT_TRUE(Store().Login("reg.example", UserPass("alice", "secret")));
  auto entry = HelperEntry("fake", "reg.example");
  ASSERT_TRUE(entry);
  EXPECT_EQ((*entry)["Username"], "alice");
  EXPECT_EQ((*entry)["Secret"], "secret");
  Json got = ReadJson(docker_config_);
  EXPECT_EQ(got["auths"]["reg.example"], Json::object());
  EXPECT_EQ(got.dump().find("secret"), std::string::npos);
  EXPECT_EQ(MustLookup("reg.example"), UserPass("alice", "secret"));
}

TEST_F(CredentialsTest, LoginUsesCredHelperForItsHost) {
  InstallHelper("perhost");
  InstallHelper("global");
  WriteDocker({{"credsStore", "global"}, {"credHelpers", {{"reg.example", "perhost"}}}});
  ASSERT_TRUE(Store().Login("reg.example", UserPass("u", "p")));
  EXPECT_TRUE(HelperEntry("perhost", "reg.example"));
  EXPECT_FALSE(HelperEntry("global", "reg.example"));
}

TEST_F(CredentialsTest, LoginLeavesMalformedConfigUntouched) {
  Write(docker_config_, "{not json");
  auto st = Store().Login("reg.example", UserPass("u", "p"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kInvalidArgument);
  EXPECT_NE(st.error().message.find(docker_config_.string()), std::string::npos);
  EXPECT_EQ(*common::ReadFile(docker_config_), "{not json");
}

TEST_F(CredentialsTest, LoginRejectsUnusableCredentials) {
  auto st = Store().Login("reg.example", Credentials{});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kInvalidArgument);
  st = Store().Login("reg.example", UserPass("a:b", "p"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(fs::exists(docker_config_));
}

TEST_F(CredentialsTest, LoginWritesThroughSymlink) {
  fs::path real = dir_.path() / "dotfiles" / "docker-config.json";
  Write(real, R"({"psFormat": "x"})");
  ASSERT_TRUE(common::MkdirAll(docker_config_.parent_path()));
  fs::create_symlink(real, docker_config_);
  ASSERT_TRUE(Store().Login("reg.example", UserPass("u", "p")));
  EXPECT_TRUE(fs::is_symlink(docker_config_));
  EXPECT_EQ(ReadJson(real)["psFormat"], "x");
  EXPECT_EQ(MustLookup("reg.example"), UserPass("u", "p"));
}

TEST_F(CredentialsTest, LogoutRemovesFromBothFiles) {
  WriteDocker({{"psFormat", "x"},
               {"auths",
                {{"reg.example", {{"auth", ci::Base64Encode("d:1")}}},
                 {"https://reg.example/", {{"auth", ci::Base64Encode("d:2")}}},
                 {"keep.example", {{"auth", ci::Base64Encode("k:1")}}}}}});
  WriteContainers({{"auths", {{"reg.example", {{"auth", ci::Base64Encode("c:1")}}}}}});
  ASSERT_TRUE(Store().Logout("reg.example"));
  EXPECT_EQ(MustLookup("reg.example"), std::nullopt);
  EXPECT_EQ(MustLookup("keep.example"), UserPass("k", "1"));
  Json got = ReadJson(docker_config_);
  EXPECT_EQ(got["psFormat"], "x");
  EXPECT_EQ(got["auths"].size(), 1u);

  auto again = Store().Logout("reg.example");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kNotFound);
}

TEST_F(CredentialsTest, LogoutWhenNeverLoggedInIsNotFound) {
  auto st = Store().Logout("reg.example");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kNotFound);
  EXPECT_FALSE(fs::exists(docker_config_));
}

TEST_F(CredentialsTest, LoginThenLogoutThroughHelper) {
  InstallHelper("fake");
  WriteDocker({{"credsStore", "fake"}});
  ASSERT_TRUE(Store().Login("docker.io", UserPass("hub", "pw")));
  EXPECT_TRUE(HelperEntry("fake", "https://index.docker.io/v1/"));
  ASSERT_TRUE(Store().Logout("registry-1.docker.io"));
  EXPECT_FALSE(HelperEntry("fake", "https://index.docker.io/v1/"));
  EXPECT_EQ(ReadJson(docker_config_)["auths"].size(), 0u);
  EXPECT_EQ(MustLookup("docker.io"), std::nullopt);
  auto again = Store().Logout("docker.io");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kNotFound);
}

// --- defaults and parsing --------------------------------------------------

// Restores an environment variable on scope exit.
class ScopedEnv {
 public:
  explicit ScopedEnv(const char* name) : name_(name) {
    if (const char* v = ::getenv(name)) old_ = v;
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_F(CredentialsTest, DefaultsComeFromTheEnvironment) {
  ScopedEnv docker_config("DOCKER_CONFIG"), xdg("XDG_RUNTIME_DIR"), home("HOME");
  ASSERT_EQ(::setenv("DOCKER_CONFIG", (dir_.path() / "dc").c_str(), 1), 0);
  ASSERT_EQ(::setenv("XDG_RUNTIME_DIR", (dir_.path() / "xdg").c_str(), 1), 0);
  CredentialStore store;
  EXPECT_EQ(store.options().docker_config, dir_.path() / "dc" / "config.json");
  EXPECT_EQ(store.options().containers_auth, dir_.path() / "xdg" / "containers" / "auth.json");
  ::unsetenv("DOCKER_CONFIG");
  ::unsetenv("XDG_RUNTIME_DIR");
  ASSERT_EQ(::setenv("HOME", dir_.path().c_str(), 1), 0);
  CredentialStore home_store;
  EXPECT_EQ(home_store.options().docker_config, dir_.path() / ".docker" / "config.json");
  EXPECT_TRUE(home_store.options().containers_auth.empty());
}

TEST(CredentialsParseCredsFlagTest, Table) {
  struct Case {
    std::string_view text;
    bool ok;
    std::string_view user, pass;
  };
  const Case cases[] = {
      {"alice:secret", true, "alice", "secret"},
      {"alice:se:cr:et", true, "alice", "se:cr:et"},
      {"alice:", true, "alice", ""},
      {"alice", false, "", ""},
      {":secret", false, "", ""},
      {"", false, "", ""},
  };
  for (const Case& c : cases) {
    auto r = ParseCredsFlag(c.text);
    ASSERT_EQ(r.has_value(), c.ok) << c.text;
    if (!c.ok) {
      EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << c.text;
      continue;
    }
    EXPECT_EQ(r->username, c.user);
    EXPECT_EQ(r->password, c.pass);
  }
}

TEST(CredentialsInternalTest, HostOfKey) {
  struct Case {
    std::string_view key;
    std::optional<std::string> host;
  };
  const Case cases[] = {
      {"reg.example", "reg.example"},
      {"reg.example:5000", "reg.example:5000"},
      {"https://reg.example/", "reg.example"},
      {"https://reg.example/v1/", "reg.example"},
      {"http://reg.example:5000", "reg.example:5000"},
      {"reg.example/", "reg.example"},
      {"reg.example/v2/", "reg.example"},
      {"reg.example/v2", "reg.example"},
      {"reg.example/org", std::nullopt},
      {"https://index.docker.io/v1/", "docker.io"},
      {"index.docker.io", "docker.io"},
      {"registry-1.docker.io", "docker.io"},
      {"docker.io", "docker.io"},
      {"https://", std::nullopt},
      {"", std::nullopt},
  };
  for (const Case& c : cases) EXPECT_EQ(ci::HostOfKey(c.key), c.host) << c.key;
}

TEST(CredentialsInternalTest, Base64RoundTrip) {
  EXPECT_EQ(ci::Base64Encode(""), "");
  EXPECT_EQ(ci::Base64Encode("f"), "Zg==");
  EXPECT_EQ(ci::Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(ci::Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(ci::Base64Encode("user:pass"), "dXNlcjpwYXNz");
  for (std::string s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                        std::string("abcd"), std::string("\xff\x00\x80 b", 5)}) {
    auto back = ci::Base64Decode(ci::Base64Encode(s));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(ci::Base64Decode("Zm8"), "fo");  // unpadded
  EXPECT_EQ(ci::Base64Decode("Z"), std::nullopt);
  EXPECT_EQ(ci::Base64Decode("Zm9v!"), std::nullopt);
}

}  // namespace
}  // namespace registry
