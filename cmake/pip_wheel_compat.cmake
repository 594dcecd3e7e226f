# The ROS 2 PyPI wheels export CMake targets whose include directories name the Python
# of the image the wheels were built in (/opt/python/cp311-cp311/...). Point those
# targets at this interpreter's headers and numpy so rosidl's Python generator compiles.
# Only include directories that do not exist are replaced, and Python is looked up only when
# there is one: against a full ROS install (every directory exists) this changes nothing.

# Is `dir` an exported Python or numpy include directory that does not exist here?
function(_sentryfuse_missing_python_include dir out)
  if(NOT EXISTS "${dir}" AND ("${dir}" MATCHES "/numpy/" OR "${dir}" MATCHES "/include/python3"))
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()

function(sentryfuse_repoint_wheel_python_includes)
  get_directory_property(_targets IMPORTED_TARGETS)
  set(_broken "")
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    foreach(_dir IN LISTS _dirs)
      _sentryfuse_missing_python_include("${_dir}" _missing)
      if(_missing)
        list(APPEND _broken ${_target})
        break()
      endif()
    endforeach()
  endforeach()
  if(NOT _broken)
    return()
  endif()

  find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import numpy; print(numpy.get_include())"
    OUTPUT_VARIABLE _numpy_include
    OUTPUT_STRIP_TRAILING_WHITESPACE
    COMMAND_ERROR_IS_FATAL ANY)
  foreach(_target IN LISTS _broken)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    set(_fixed "")
    foreach(_dir IN LISTS _dirs)
      _sentryfuse_missing_python_include("${_dir}" _missing)
      if(_missing AND "${_dir}" MATCHES "/numpy/")
        list(APPEND _fixed "${_numpy_include}")
      elseif(_missing)
        list(APPEND _fixed ${Python3_INCLUDE_DIRS})
      else()
        list(APPEND _fixed "${_dir}")
      endif()
    endforeach()
    set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
  endforeach()
  list(LENGTH _broken _count)
  message(STATUS "sentryfuse: pointed the Python includes of ${_count} imported targets at ${Python3_EXECUTABLE}")
endfunction()
