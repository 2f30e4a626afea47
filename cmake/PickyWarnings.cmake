# Picky warnings, in the spirit of curl's CMake/PickyWarnings.cmake: everything
# that catches real bugs in C17 code without drowning the build in noise.
set(HERALD_PICKY_FLAGS
    -Wall -Wextra -Wpedantic
    -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
    -Wformat=2 -Wformat-security -Wpointer-arith -Wcast-align -Wundef
    -Wwrite-strings -Wvla -Wimplicit-fallthrough -Wmissing-declarations
    -Wdouble-promotion -Wredundant-decls -Wnested-externs)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  list(APPEND HERALD_PICKY_FLAGS -Wlogical-op -Wduplicated-cond -Wjump-misses-init)
endif()
if(HERALD_WERROR)
  list(APPEND HERALD_PICKY_FLAGS -Werror)
endif()
