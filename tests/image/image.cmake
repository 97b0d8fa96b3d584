# The image front end against PIL and PyTorch (tools/make_image_fixtures.py), and bad input.
ear_test(image_golden SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_image_golden.c LIBS ear_image)
ear_test(image_errors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_image_errors.c LIBS ear_image)
