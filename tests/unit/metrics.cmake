# The metrics library (src/metrics/): counters, gauges, histograms and the
# Prometheus text format, checked to the byte. No HTTP, no network; the
# endpoint is tested through `gantry serve` (tests/integration/cri).
gantry_test(metrics_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/metrics/text_format_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/metrics/registry_test.cc
  LIBS gantry_metrics)
