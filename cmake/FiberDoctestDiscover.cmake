# Runs a doctest executable with --list-test-cases and writes one ctest test per test case.
# Called after each build of a test executable (see FiberTesting.cmake) with:
#   EXE, PREFIX, WORKDIR, OUT
# doctest's --test-case filter splits on commas and treats [ ] * ? as patterns, so those
# characters become the one-character wildcard '?'; every generated test also fails when it ran no
# test case at all, so a name that the filter does not match cannot pass silently.
execute_process(COMMAND "${EXE}" --list-test-cases OUTPUT_VARIABLE listing RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} --list-test-cases failed (${rc})")
endif()
string(REPLACE "[" "<fiber-lb>" listing "${listing}")
string(REPLACE "]" "<fiber-rb>" listing "${listing}")
string(REPLACE ";" "<fiber-sc>" listing "${listing}")
string(REPLACE "\n" ";" lines "${listing}")
set(content "")
set(inside OFF)
foreach(line IN LISTS lines)
  if(line MATCHES "^=+$")
    if(inside)
      break()
    endif()
    set(inside ON)
    continue()
  endif()
  if(NOT inside OR line STREQUAL "" OR line MATCHES "^<fiber-lb>doctest<fiber-rb>")
    continue()
  endif()
  string(REPLACE "<fiber-lb>" "[" name "${line}")
  string(REPLACE "<fiber-rb>" "]" name "${name}")
  string(REPLACE "<fiber-sc>" ";" name "${name}")
  string(REGEX REPLACE "[,*?\\\\]" "?" filter "${line}")
  string(REPLACE "<fiber-lb>" "?" filter "${filter}")
  string(REPLACE "<fiber-rb>" "?" filter "${filter}")
  string(REPLACE "<fiber-sc>" "?" filter "${filter}")
  set(test "${PREFIX}${name}")
  string(APPEND content
    "add_test([==[${test}]==] \"${EXE}\" [==[--test-case=${filter}]==])\n"
    "set_tests_properties([==[${test}]==] PROPERTIES WORKING_DIRECTORY \"${WORKDIR}\" "
    "FAIL_REGULAR_EXPRESSION [==[test cases: +0 +\\|]==] SKIP_REGULAR_EXPRESSION [==[FIBER_TEST_SKIPPED]==])\n")
endforeach()
file(WRITE "${OUT}" "${content}")
