// The pieces under the registry harness: child processes, polling, the
// loopback HTTP server and its TLS helper. No peers needed. The suite is
// named `harness` so that `ctest -R harness` selects it with the rest.

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/http_server.h"
#include "fixtures/process.h"
#include "fixtures/token_server.h"

namespace {

using namespace std::chrono_literals;

// A libcurl GET on one shared handle, so keep-alive can be observed.
struct Client {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl{curl_easy_init(), &curl_easy_cleanup};
  std::string body;
  long status = 0;
  long connects = 0;

  static size_t Append(char* d, size_t s, size_t n, void* out) {
    static_cast<std::string*>(out)->append(d, s * n);
    return s * n;
  }

  CURLcode Get(const std::string& url, bool head = false) {
    body.clear();
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl.get(), CURLOPT_NOBODY, head ? 1L : 0L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &Append);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(curl.get());
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    long n = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_NUM_CONNECTS, &n);
    connects += n;
    return rc;
  }
};

TEST(harness, RunCommandCapturesOutputStdinEnvAndExitCode) {
  auto r = fixtures::RunCommand(
      {"sh", "-c", "cat; echo \"$GANTRY_X\" >&2; exit 3"},
      {.env = {{"GANTRY_X", "from-env"}}, .cwd = {}, .stdin_data = "hello\n", .timeout = 10s});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "hello\n");
  EXPECT_EQ(r->err, "from-env\n");

  // A signal death reads as 128 + signal, like the shell's $?.
  auto killed = fixtures::RunCommand({"sh", "-c", "kill -9 $$"});
  ASSERT_TRUE(killed) << killed.error().message;
  EXPECT_EQ(killed->exit_code, 128 + SIGKILL);

  // More output than a pipe buffer holds, while stdin is still open.
  auto big = fixtures::RunCommand(
      {"sh", "-c", "head -c 1000000 /dev/zero; cat >/dev/null"},
      {.env = {}, .cwd = {}, .stdin_data = std::string(300000, 'x'), .timeout = 10s});
  ASSERT_TRUE(big) << big.error().message;
  EXPECT_EQ(big->exit_code, 0);
  EXPECT_EQ(big->out.size(), 1000000u);

  // A child that exits without reading its stdin must not hurt us.
  auto no_read = fixtures::RunCommand(
      {"true"}, {.env = {}, .cwd = {}, .stdin_data = std::string(1 << 20, 'x'), .timeout = 10s});
  ASSERT_TRUE(no_read) << no_read.error().message;
  EXPECT_EQ(no_read->exit_code, 0);
}

TEST(harness, RunCommandTimesOutAndMissingBinaryIsNotFound) {
  auto start = fixtures::Clock::now();
  auto r = fixtures::RunCommand({"sleep", "30"},
                                {.env = {}, .cwd = {}, .stdin_data = {}, .timeout = 200ms});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, common::Errc::kUnavailable);
  EXPECT_LT(fixtures::Clock::now() - start, 10s);

  auto missing = fixtures::RunCommand({"gantry-no-such-binary-xyz"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, common::Errc::kNotFound);
  auto missing_child = fixtures::Child::Spawn({.argv = {"gantry-no-such-binary-xyz"},
                                               .env = {},
                                               .stdout_path = {},
                                               .stderr_path = {},
                                               .cwd = {},
                                               .kill_grace = 1000ms,
                                               .die_with_parent = true});
  ASSERT_FALSE(missing_child);
  EXPECT_EQ(missing_child.error().code, common::Errc::kNotFound);
  auto bad_cwd = fixtures::Child::Spawn({.argv = {"true"},
                                         .env = {},
                                         .stdout_path = {},
                                         .stderr_path = {},
                                         .cwd = "/nonexistent/gantry",
                                         .kill_grace = 1000ms,
                                         .die_with_parent = true});
  ASSERT_FALSE(bad_cwd);
  EXPECT_EQ(bad_cwd.error().code, common::Errc::kNotFound);
  EXPECT_FALSE(fixtures::FindExecutable("gantry-no-such-binary-xyz"));
  EXPECT_TRUE(fixtures::FindExecutable("sh"));
}

TEST(harness, ChildIsKilledAndReapedOnDestruction) {
  auto dir = common::TempDir::Create("gantry-harness");
  ASSERT_TRUE(dir) << dir.error().message;
  const auto ready = dir->path() / "ready";
  // SIGTERM is ignored (ignored dispositions survive exec), so stopping
  // must escalate to SIGKILL after the grace period.
  auto stubborn =
      fixtures::Child::Spawn({.argv = {"sh", "-c", "trap '' TERM; echo ready; exec sleep 60"},
                              .env = {},
                              .stdout_path = ready,
                              .stderr_path = {},
                              .cwd = {},
                              .kill_grace = 100ms,
                              .die_with_parent = true});
  ASSERT_TRUE(stubborn) << stubborn.error().message;
  ASSERT_TRUE(fixtures::WaitUntil(
      [&] {
        auto t = common::ReadFile(ready);
        return t && *t == "ready\n";
      },
      10s));
  auto start = fixtures::Clock::now();
  auto st = stubborn->Terminate(100ms);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(*st, 128 + SIGKILL);
  EXPECT_GE(fixtures::Clock::now() - start, 100ms);

  pid_t pid = -1;
  {
    auto c = fixtures::Child::Spawn({.argv = {"sleep", "60"},
                                     .env = {},
                                     .stdout_path = {},
                                     .stderr_path = {},
                                     .cwd = {},
                                     .kill_grace = 5000ms,
                                     .die_with_parent = true});
    ASSERT_TRUE(c) << c.error().message;
    pid = c->pid();
    EXPECT_FALSE(c->Exited());
  }
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD) << "the child must have been reaped";
}

TEST(harness, ChildDiesWithTheThreadThatSpawnedIt) {
  // PR_SET_PDEATHSIG fires when the spawning thread exits, the same event
  // that kills the children of a crashed test process.
  fixtures::Child child;
  std::thread spawner([&] {
    auto c = fixtures::Child::Spawn({.argv = {"sleep", "60"},
                                     .env = {},
                                     .stdout_path = {},
                                     .stderr_path = {},
                                     .cwd = {},
                                     .kill_grace = 1000ms,
                                     .die_with_parent = true});
    ASSERT_TRUE(c) << c.error().message;
    child = std::move(*c);
  });
  spawner.join();
  ASSERT_TRUE(child.valid());
  auto st = child.WaitFor(fixtures::Clock::now() + 10s);
  ASSERT_TRUE(st) << st.error().message;
  ASSERT_TRUE(st->has_value()) << "the child outlived its spawning thread";
  EXPECT_EQ(**st, 128 + SIGKILL);
}

TEST(harness, ChildWaitRedirectsAndWaitForDeadline) {
  auto dir = common::TempDir::Create("gantry-harness");
  ASSERT_TRUE(dir) << dir.error().message;
  auto log = dir->path() / "out.log";
  auto c = fixtures::Child::Spawn({.argv = {"sh", "-c", "echo out; echo err >&2; read x; exit 7"},
                                   .env = {},
                                   .stdout_path = log,
                                   .stderr_path = log,
                                   .cwd = dir->path(),
                                   .kill_grace = 1000ms,
                                   .die_with_parent = true});
  ASSERT_TRUE(c) << c.error().message;
  // stdin is /dev/null, so `read` returns at once and the shell exits 7.
  auto st = c->WaitFor(fixtures::Clock::now() + 10s);
  ASSERT_TRUE(st) << st.error().message;
  ASSERT_TRUE(st->has_value());
  EXPECT_EQ(**st, 7);
  auto w = c->Wait();
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, 7);
  auto text = common::ReadFile(log);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, "out\nerr\n");

  auto sleeper = fixtures::Child::Spawn({.argv = {"sleep", "60"},
                                         .env = {},
                                         .stdout_path = {},
                                         .stderr_path = {},
                                         .cwd = {},
                                         .kill_grace = 1000ms,
                                         .die_with_parent = true});
  ASSERT_TRUE(sleeper) << sleeper.error().message;
  auto pending = sleeper->WaitFor(fixtures::Clock::now() + 50ms);
  ASSERT_TRUE(pending);
  EXPECT_FALSE(pending->has_value());
  auto term = sleeper->Terminate(1000ms);
  ASSERT_TRUE(term) << term.error().message;
  EXPECT_EQ(*term, 128 + SIGTERM);
}

TEST(harness, WaitUntilPollsUntilTrueOrDeadline) {
  int calls = 0;
  EXPECT_TRUE(fixtures::WaitUntil([&] { return ++calls == 3; }, 5s, 1ms));
  EXPECT_EQ(calls, 3);
  auto start = fixtures::Clock::now();
  EXPECT_FALSE(fixtures::WaitUntil([] { return false; }, 50ms, 5ms));
  EXPECT_GE(fixtures::Clock::now() - start, 50ms);
  auto port = fixtures::FreeLoopbackPort();
  ASSERT_TRUE(port) << port.error().message;
  EXPECT_GT(*port, 0);
}

TEST(harness, HttpServerKeepAliveQueryHeadAndErrors) {
  std::atomic<int> seen{0};
  auto server = fixtures::HttpServer::Start(
      {.handler = fixtures::SimpleHandler([&](const fixtures::HttpRequest& r) {
         ++seen;
         if (r.path == "/missing")
           return fixtures::HttpResponse{.status = 404, .headers = {}, .body = "nope"};
         std::string scopes;
         for (const auto& s : r.QueryAll("scope")) scopes += "[" + s + "]";
         return fixtures::HttpResponse{.status = 200,
                                       .headers = {{"X-Path", r.path}},
                                       .body = r.method + " " + r.path + " " + scopes};
       }),
       .port = 0,
       .keep_alive = true});
  ASSERT_TRUE(server) << server.error().message;
  Client c;
  const std::string base = (*server)->base_url();
  EXPECT_EQ(base, "http://127.0.0.1:" + std::to_string((*server)->port()));
  ASSERT_EQ(c.Get(base + "/a%20b?scope=x%3Ay&scope=p+q"), CURLE_OK);
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(c.body, "GET /a b [x:y][p q]");
  ASSERT_EQ(c.Get(base + "/missing"), CURLE_OK);
  EXPECT_EQ(c.status, 404);
  EXPECT_EQ(c.body, "nope");
  ASSERT_EQ(c.Get(base + "/head", /*head=*/true), CURLE_OK);
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(c.body, "");
  EXPECT_EQ(c.connects, 1) << "three requests should share one kept-alive connection";
  EXPECT_EQ(seen.load(), 3);

  // A handler that answers nothing yields a 500.
  auto silent = fixtures::HttpServer::Start(
      {.handler = [](const fixtures::HttpRequest&, fixtures::HttpResponseWriter&) {},
       .port = 0,
       .keep_alive = false});
  ASSERT_TRUE(silent) << silent.error().message;
  Client c2;
  ASSERT_EQ(c2.Get((*silent)->base_url() + "/"), CURLE_OK);
  EXPECT_EQ(c2.status, 500);
}

// Clients that try https first on a plain-HTTP host (skopeo with
// tls-verify off) waited for their handshake timeout (10 s per request)
// while the server waited for an HTTP head that never came.
TEST(harness, HttpServerAnswersATlsClientHelloAtOnce) {
  std::atomic<int> seen{0};
  auto server = fixtures::HttpServer::Start(
      {.handler = fixtures::SimpleHandler([&](const fixtures::HttpRequest&) {
         ++seen;
         return fixtures::HttpResponse{.status = 200, .headers = {}, .body = "ok"};
       }),
       .port = 0,
       .keep_alive = true});
  ASSERT_TRUE(server) << server.error().message;
  Client c;
  // Not CURLE_OPERATION_TIMEDOUT: the handshake fails on the plain answer.
  EXPECT_EQ(c.Get("https://127.0.0.1:" + std::to_string((*server)->port()) + "/"),
            CURLE_SSL_CONNECT_ERROR);
  EXPECT_EQ(seen.load(), 0);
  ASSERT_EQ(c.Get((*server)->base_url() + "/"), CURLE_OK);
  EXPECT_EQ(c.body, "ok");
}

TEST(harness, HttpServerStopInterruptsStalledHandler) {
  std::atomic<bool> entered{false};
  auto server = fixtures::HttpServer::Start(
      {.handler =
           [&](const fixtures::HttpRequest&, fixtures::HttpResponseWriter& w) {
             (void)w.WriteRaw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
             entered = true;
             // Stalls until the server stops.
             while (!w.WaitForStop(std::chrono::minutes(10))) {
             }
           },
       .port = 0,
       .keep_alive = true});
  ASSERT_TRUE(server) << server.error().message;
  const std::string url = (*server)->base_url() + "/stall";
  std::thread client([&] {
    Client c;
    c.Get(url);  // fails: the body is cut short when the server stops
  });
  ASSERT_TRUE(fixtures::WaitUntil([&] { return entered.load(); }, 10s));
  auto start = fixtures::Clock::now();
  (*server)->Stop();
  EXPECT_LT(fixtures::Clock::now() - start, 5s);
  client.join();
}

TEST(harness, CertificatesAndBase64) {
  auto ca = fixtures::MakeCertificate({.common_name = "ca",
                                       .is_ca = true,
                                       .dns_names = {},
                                       .ips = {},
                                       .server_auth = false,
                                       .validity = std::chrono::hours(1)});
  ASSERT_TRUE(ca) << ca.error().message;
  auto leaf = fixtures::MakeCertificate({.common_name = "leaf",
                                         .is_ca = false,
                                         .dns_names = {"localhost"},
                                         .ips = {"127.0.0.1"},
                                         .server_auth = true,
                                         .validity = std::chrono::hours(1)},
                                        &*ca);
  ASSERT_TRUE(leaf) << leaf.error().message;
  auto dir = common::TempDir::Create("gantry-harness");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(common::AtomicWriteFile(dir->path() / "ca.pem", ca->cert_pem));
  ASSERT_TRUE(common::AtomicWriteFile(dir->path() / "leaf.pem", leaf->cert_pem));
  if (fixtures::FindExecutable("openssl")) {
    std::vector<std::string> argv = {"openssl",
                                     "verify",
                                     "-CAfile",
                                     (dir->path() / "ca.pem").string(),
                                     "-purpose",
                                     "sslserver",
                                     (dir->path() / "leaf.pem").string()};
    auto v = fixtures::RunCommand(argv);
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(v->exit_code, 0) << v->Describe(argv) << v->out;
  }

  EXPECT_EQ(fixtures::Base64Encode("ab?"), "YWI/");
  EXPECT_EQ(fixtures::Base64UrlEncode("ab?>"), "YWI_Pg");
  EXPECT_EQ(fixtures::Base64Decode("YWI/Pg=="), "ab?>");
  EXPECT_EQ(fixtures::Base64Decode("YWI/Pg"), "ab?>");
  EXPECT_FALSE(fixtures::Base64Decode("Y"));
  EXPECT_FALSE(fixtures::Base64Decode("YW*="));

  auto scope = fixtures::ParseTokenScope("repository:127.0.0.1:5000/a/b:pull,push");
  ASSERT_TRUE(scope) << scope.error().message;
  EXPECT_EQ(scope->type, "repository");
  EXPECT_EQ(scope->name, "127.0.0.1:5000/a/b");
  EXPECT_EQ(scope->actions, (std::vector<std::string>{"pull", "push"}));
  EXPECT_FALSE(fixtures::ParseTokenScope("repository"));
}

}  // namespace
