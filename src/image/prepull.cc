#include "image/prepull.h"

#include <sys/stat.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "common/fs.h"
#include "common/task_group.h"

namespace image {
namespace {

// The words of a list line, up to a `#` that starts a word.
std::vector<std::string> ListWords(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    if (i >= line.size() || line[i] == '#') break;
    size_t end = i;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t' && line[end] != '\r') ++end;
    words.emplace_back(line.substr(i, end - i));
    i = end;
  }
  return words;
}

PrepullEntry ParseLine(int number, const std::vector<std::string>& words) {
  PrepullEntry e{.line = number, .text = words[0]};
  const std::string where = "line " + std::to_string(number) + ": ";
  std::string platform;
  if (words.size() == 2 && words[1].starts_with("--platform=")) {
    platform = words[1].substr(std::string_view("--platform=").size());
  } else if (words.size() == 3 && words[1] == "--platform") {
    platform = words[2];
  } else if (words.size() == 2 && !words[1].starts_with("-")) {
    platform = words[1];
  } else if (words.size() != 1) {
    e.error = where + "expected `REF [PLATFORM]`, got " + std::to_string(words.size()) + " words";
    return e;
  }
  auto ref = registry::ImageRef::Parse(words[0]);
  if (!ref) {
    e.error = where + ref.error().message;
    return e;
  }
  if (words.size() > 1) {
    auto p = oci::ParsePlatform(platform);
    if (!p) {
      e.error = where + p.error().message;
      return e;
    }
    e.platform = *p;
  }
  e.ref = *ref;
  return e;
}

PrepullResult Outcome(const PrepullEntry& e, const common::Result<FetchResult>& r) {
  PrepullResult out{.line = e.line,
                    .ref = e.ref ? e.ref->str() : e.text,
                    .platform = e.platform ? e.platform->str() : std::string()};
  if (!r) {
    out.error = r.error().message;
    return out;
  }
  out.digest = r->target.digest.str();
  out.state = r->blobs_fetched > 0 ? PrepullState::kPulled : PrepullState::kPresent;
  out.bytes_downloaded = r->bytes_downloaded;
  return out;
}

}  // namespace

std::vector<PrepullEntry> ParsePrepullList(std::string_view text) {
  std::vector<PrepullEntry> out;
  int number = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    ++number;
    std::vector<std::string> words = ListWords(text.substr(start, end - start));
    if (!words.empty()) out.push_back(ParseLine(number, words));
    start = end + 1;
  }
  return out;
}

std::string PrepullOwner(const std::filesystem::path& path) {
  if (path == "-") return "prepull:-";
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  return "prepull:" + (ec ? path : abs).lexically_normal().string();
}

std::string_view PrepullStateName(PrepullState s) {
  switch (s) {
    case PrepullState::kPulled:
      return "pulled";
    case PrepullState::kPresent:
      return "present";
    case PrepullState::kFailed:
      break;
  }
  return "failed";
}

common::Result<std::vector<PrepullResult>> RunPrepull(store::MetadataDb& db,
                                                      const std::vector<PrepullEntry>& entries,
                                                      const PrepullOptions& options) {
  if (!options.owner.empty()) {
    std::vector<std::string> names;
    for (const auto& e : entries)
      if (e.ref) names.push_back(e.ref->str());
    TRY(common::Wrap(db.SetPins(options.owner, names), "prepull"));
  }
  std::vector<PrepullResult> results(entries.size());
  for (size_t i = 0; i < entries.size(); ++i)
    results[i] = PrepullResult{.line = entries[i].line,
                               .ref = entries[i].ref ? entries[i].ref->str() : entries[i].text,
                               .error = "cancelled"};
  std::mutex mu;  // one on_result call at a time
  auto job = [&](size_t i) -> common::Status {
    const PrepullEntry& e = entries[i];
    PrepullResult r;
    if (!e.ref) {
      r = Outcome(e, std::unexpected(common::Error{common::Errc::kInvalidArgument, 0, e.error}));
    } else if (options.cancel != nullptr && options.cancel->load()) {
      return {};
    } else {
      r = Outcome(e, options.pull(e));
    }
    results[i] = r;
    if (options.on_result) {
      std::lock_guard<std::mutex> lock(mu);
      options.on_result(r);
    }
    return {};
  };
  // Every job returns Ok (a failed pull is a result), so RunJobs hands out
  // every entry; only `cancel` stops it.
  std::atomic<bool> stop{false};
  common::JobOptions jo{.threads = std::max(1, options.jobs), .stop = &stop};
  if (options.cancel != nullptr) {
    const std::atomic<bool>* cancel = options.cancel;
    jo.cancelled = [cancel] { return cancel->load(); };
    jo.meanwhile = [] { return common::Status{}; };
  }
  (void)common::RunJobs(entries.size(), jo, job);
  return results;
}

void WatchPrepullList(store::MetadataDb& db, const PrepullWatchOptions& options,
                      const std::atomic<bool>* stop) {
  PrepullOptions run = options.run;
  if (run.owner.empty()) run.owner = PrepullOwner(options.list);
  if (run.cancel == nullptr) run.cancel = stop;
  std::optional<common::FileStamp> last;
  bool ran = false;
  auto last_round = std::chrono::steady_clock::now();
  auto last_poll = std::chrono::steady_clock::time_point{};
  while (!stop->load()) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_poll >= options.poll || !ran) {
      last_poll = now;
      std::optional<common::FileStamp> stamp = common::StampOf(options.list);
      const bool due = options.refresh.count() > 0 && now - last_round >= options.refresh;
      if (!ran || stamp != last || due) {
        common::Result<std::vector<PrepullResult>> round =
            common::MakeError(common::Errc::kNotFound, "");
        auto text = common::ReadFile(options.list);
        if (!text) {
          round = std::unexpected(text.error().Wrap("prepull"));
        } else {
          round = RunPrepull(db, ParsePrepullList(*text), run);
          // The stamp read before the file was: a change made while the
          // round ran is seen at the next poll.
          last = stamp;
          ran = true;
          last_round = std::chrono::steady_clock::now();
        }
        if (options.on_round) options.on_round(round);
        if (!text) {
          // Retried at the next poll, not at once.
          ran = true;
          last = std::nullopt;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

PrepullWatcher::PrepullWatcher(store::MetadataDb db) : db_(std::move(db)) {}

PrepullWatcher::~PrepullWatcher() { Stop(); }

common::Result<std::unique_ptr<PrepullWatcher>> PrepullWatcher::Start(
    const std::filesystem::path& root, PrepullWatchOptions options) {
  ASSIGN_OR_RETURN(store::MetadataDb db, store::MetadataDb::Open(root));
  std::unique_ptr<PrepullWatcher> w(new PrepullWatcher(std::move(db)));
  PrepullWatcher* self = w.get();
  w->thread_ =
      std::thread([self, o = std::move(options)] { WatchPrepullList(self->db_, o, &self->stop_); });
  return w;
}

void PrepullWatcher::RequestStop() { stop_ = true; }

void PrepullWatcher::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace image
