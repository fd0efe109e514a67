#include "cli/unpack_step.h"

#include "cli/progress.h"

namespace cli {

void PrintUnpackSummary(FILE* out, const std::string& name, const snapshot::Snapshotter& sn,
                        const image::UnpackResult& r) {
  if (out == nullptr) return;
  std::string top = r.chain_ids.empty() ? "(no layers)" : r.chain_ids.back().str();
  if (r.layers_applied == 0)
    fprintf(out, "%s: already unpacked (%s, chain %s)\n", name.c_str(),
            std::string(snapshot::KindName(sn.kind())).c_str(), top.c_str());
  else
    fprintf(out, "%s: unpacked %d layer(s), %s, into %s snapshots (chain %s)\n", name.c_str(),
            r.layers_applied, HumanBytes(r.bytes_unpacked).c_str(),
            std::string(snapshot::KindName(sn.kind())).c_str(), top.c_str());
}

}  // namespace cli
