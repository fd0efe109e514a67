#pragma once
// The trust tests' image references, written as users type them.

#include <gtest/gtest.h>

#include <string>

#include "registry/reference.h"

namespace trust::test_refs {

// ImageRef::Parse that fails the test on a bad reference.
inline registry::ImageRef Ref(const std::string& text) {
  auto r = registry::ImageRef::Parse(text);
  EXPECT_TRUE(r) << text;
  return r ? *r : registry::ImageRef();
}

}  // namespace trust::test_refs
