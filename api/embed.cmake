# Writes OUT, a C file defining api_openapi_json[] with the bytes of IN.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* generated from api/openapi.json by api/embed.cmake */\n#include <stddef.h>\n"
     "const unsigned char api_openapi_json[] = {${body} 0};\nconst size_t api_openapi_json_len = ${bytes};\n")
