# src/oci: descriptors, media types, manifests, indexes, image configs,
# platforms. Pure functions; links nothing but gantry_oci.
gantry_test(oci_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/oci/descriptor_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/oci/manifest_test.cc
  LIBS gantry_oci)
