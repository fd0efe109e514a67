# src/lazylib: libraries loaded at their first call (not built with
# -DGANTRY_LAZY_LIBS=OFF).
if(TARGET gantry_lazylib)
  gantry_test(lazylib_unit_test LABELS unit
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/lazylib/lazy_library_test.cc
    LIBS gantry_lazylib gantry_lazy_crypto)
endif()
