// Module boundaries the build itself does not hold (issue 14): registry/
// (sources and the client: resolve, manifests, blobs into a sink) knows
// nothing of the store's records or of unpacking, and oci/ (the formats as
// data) uses nothing but common/. Both would still compile if someone
// added `#include "store/…"` and linked gantry_store again, since every
// module sees src/; so this test reads the source tree (GANTRY_SOURCE_DIR):
// the quoted includes of every file of a module, and the gantry_* libraries
// its CMakeLists.txt names.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

fs::path ModuleDir(const std::string& module) {
  return fs::path(GANTRY_SOURCE_DIR) / "src" / module;
}

// "file:line: #include …" for each `#include "DIR/…"` under src/`module`
// whose DIR is not in `allowed`.
std::vector<std::string> IncludesOutside(const std::string& module,
                                         const std::set<std::string>& allowed) {
  static const std::regex kInclude(R"re(^\s*#\s*include\s*"([^"/]+)/)re");
  std::vector<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(ModuleDir(module))) {
    const std::string ext = entry.path().extension().string();
    if (!entry.is_regular_file() || (ext != ".h" && ext != ".cc")) continue;
    std::ifstream in(entry.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      std::smatch m;
      if (std::regex_search(line, m, kInclude) && !allowed.contains(m[1].str()))
        out.push_back(entry.path().lexically_relative(GANTRY_SOURCE_DIR).string() + ":" +
                      std::to_string(n) + ": " + line);
    }
  }
  return out;
}

// The gantry_* names in src/`module`/CMakeLists.txt, comments left out.
std::set<std::string> CMakeTargets(const std::string& module) {
  static const std::regex kTarget(R"(\bgantry_[A-Za-z0-9_]+)");
  std::set<std::string> out;
  std::ifstream in(ModuleDir(module) / "CMakeLists.txt");
  EXPECT_TRUE(in) << "no CMakeLists.txt in " << ModuleDir(module);
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    for (std::sregex_iterator it(line.begin(), line.end(), kTarget), end; it != end; ++it)
      out.insert(it->str());
  }
  return out;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += "\n  " + l;
  return s;
}

TEST(RegistryLayering, IncludesNoStoreNorAnythingAboveIt) {
  const auto outside = IncludesOutside("registry", {"common", "oci", "registry"});
  EXPECT_TRUE(outside.empty()) << "src/registry includes outside common/, oci/ and registry/ "
                                  "(a blob goes into a registry::BlobSink; what writes it "
                                  "into the store lives in image/fetch.cc):"
                               << Joined(outside);
}

TEST(RegistryLayering, CMakeLinksNoStore) {
  const auto targets = CMakeTargets("registry");
  EXPECT_TRUE(targets.contains("gantry_registry")) << "src/registry/CMakeLists.txt not read";
  EXPECT_FALSE(targets.contains("gantry_store"))
      << "src/registry/CMakeLists.txt names gantry_store";
  const std::set<std::string> allowed = {"gantry_registry", "gantry_common", "gantry_oci",
                                         "gantry_lazy_curl"};
  for (const auto& t : targets)
    EXPECT_TRUE(allowed.contains(t)) << "src/registry/CMakeLists.txt names " << t;
}

TEST(OciLayering, IncludesOnlyCommon) {
  const auto outside = IncludesOutside("oci", {"common", "oci"});
  EXPECT_TRUE(outside.empty()) << "src/oci includes outside common/ and oci/:" << Joined(outside);
}

TEST(OciLayering, CMakeLinksOnlyCommon) {
  const auto targets = CMakeTargets("oci");
  EXPECT_TRUE(targets.contains("gantry_oci")) << "src/oci/CMakeLists.txt not read";
  for (const auto& t : targets)
    EXPECT_TRUE(t == "gantry_oci" || t == "gantry_common") << "src/oci/CMakeLists.txt names " << t;
}

}  // namespace
