/*
 * lua/lsandbox.c: the Lua half of `reclab --sandbox` (scripts from others). A state bound
 * to a host confined to a workspace folder (rlab_host_set_sandbox) loses what reaches
 * outside it:
 *   - removed: os.execute, io.popen, os.tmpname, package.loadlib, the debug library
 *     (global and package.loaded), the C-module searchers (package.cpath is emptied);
 *   - confined to the workspace: io.open, io.lines, io.input, io.output, os.remove,
 *     os.rename, dofile, loadfile, require of Lua files (package.path is the workspace's
 *     ?.lua and ?/init.lua), and the binding's own file functions (datasets.load,
 *     models.save, models.load: rlab__check_path); command PATH arguments are the host's
 *     (core/host/sandbox.c);
 *   - text only: load, loadfile, dofile and require refuse precompiled chunks (malformed
 *     bytecode can break the VM's memory safety).
 * A refused call raises "<function>: sandbox: path '...' is outside the workspace <root>".
 */
#include "lreclab_internal.h"

#include <string.h>

/* Raise unless path is inside the workspace root. */
static void check_in(lua_State *L, const char *root, const char *fname, const char *path)
{
    rlab_err err = {0};
    if (rlab_path_inside(root, path, &err) != RLAB_OK)
        luaL_error(L, "%s: sandbox: %s", fname, err.msg);
}

void rlab__check_path(lua_State *L, const char *fname, const char *path)
{
    const char *root = rlab_host_sandbox(rlab__lctx(L)->host);
    if (root && path)
        check_in(L, root, fname, path);
}

/* A confined library function. Upvalues: the original function, its name, the workspace,
 * how many leading arguments are paths (each checked when it is a string). */
static int l_confined(lua_State *L)
{
    const char *fname = lua_tostring(L, lua_upvalueindex(2));
    const char *root = lua_tostring(L, lua_upvalueindex(3));
    int npaths = (int)lua_tointeger(L, lua_upvalueindex(4));
    for (int i = 1; i <= npaths; i++)
        if (lua_type(L, i) == LUA_TSTRING)
            check_in(L, root, fname, lua_tostring(L, i));
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1)); /* args f */
    lua_insert(L, 1);                      /* f args */
    lua_call(L, n, LUA_MULTRET);           /* results */
    return lua_gettop(L);
}

/* load(chunk [, chunkname [, mode [, env]]]) with mode forced to "t". Upvalue: load. */
static int l_load_text(lua_State *L)
{
    lua_settop(L, 4);                      /* chunk name mode env */
    lua_pushliteral(L, "t");               /* chunk name mode env "t" */
    lua_replace(L, 3);                     /* chunk name "t" env */
    lua_pushvalue(L, lua_upvalueindex(1)); /* chunk name "t" env load */
    lua_insert(L, 1);                      /* load chunk name "t" env */
    lua_call(L, 4, LUA_MULTRET);           /* results */
    return lua_gettop(L);
}

/* loadfile([path [, mode [, env]]]) with path confined and mode forced to "t".
 * Upvalues: loadfile, name, workspace. */
static int l_loadfile_text(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING)
        check_in(L, lua_tostring(L, lua_upvalueindex(3)), lua_tostring(L, lua_upvalueindex(2)),
                 lua_tostring(L, 1));
    lua_settop(L, 3);                      /* path mode env */
    lua_pushliteral(L, "t");               /* path mode env "t" */
    lua_replace(L, 2);                     /* path "t" env */
    lua_pushvalue(L, lua_upvalueindex(1)); /* path "t" env loadfile */
    lua_insert(L, 1);                      /* loadfile path "t" env */
    lua_call(L, 3, LUA_MULTRET);           /* results */
    return lua_gettop(L);
}

/* dofile([path]): the confined, text-only loadfile, then the chunk. */
static int l_dofile_text(lua_State *L)
{
    const char *path = luaL_optstring(L, 1, NULL);
    if (path)
        check_in(L, lua_tostring(L, lua_upvalueindex(1)), "dofile", path);
    lua_settop(L, 1);                           /* path */
    if (luaL_loadfilex(L, path, "t") != LUA_OK) /* path f|e */
        return lua_error(L);
    lua_call(L, 0, LUA_MULTRET); /* path results */
    return lua_gettop(L) - 1;
}

/* The Lua-file searcher of require, text only (the stock one loads precompiled files too):
 * package.searchpath(name, package.path), then the file as source. Returns the loader and
 * its path, or a message as the stock searchers do. */
static int l_search_text(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getglobal(L, "package");       /* name P */
    lua_getfield(L, -1, "searchpath"); /* name P sp */
    lua_pushstring(L, name);           /* name P sp name */
    lua_getfield(L, -3, "path");       /* name P sp name path */
    lua_call(L, 2, 2);                 /* name P file|nil msg? */
    if (lua_isnil(L, -2))
        return 1; /* the message */
    const char *file = lua_tostring(L, -2);
    if (luaL_loadfilex(L, file, "t") != LUA_OK) /* name P file msg f|e */
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
                          lua_tostring(L, -1));
    lua_pushvalue(L, -3); /* name P file msg f file */
    return 2;
}

/* Replace table[field] (table at the top of the stack) by a confined version. */
static void confine(lua_State *L, const char *root, const char *field, const char *fname,
                    int npaths)
{
    if (lua_getfield(L, -1, field) != LUA_TFUNCTION) { /* t f? */
        lua_pop(L, 1);                                 /* t */
        return;
    }
    lua_pushstring(L, fname);           /* t f name */
    lua_pushstring(L, root);            /* t f name root */
    lua_pushinteger(L, npaths);         /* t f name root n */
    lua_pushcclosure(L, l_confined, 4); /* t g */
    lua_setfield(L, -2, field);         /* t */
}

/* Set table[field] = nil in the global table `lib` (when it exists). */
static void drop(lua_State *L, const char *lib, const char *field)
{
    if (lua_getglobal(L, lib) == LUA_TTABLE) { /* t */
        lua_pushnil(L);                        /* t nil */
        lua_setfield(L, -2, field);            /* t */
    }
    lua_pop(L, 1); /* */
}

void rlab__lua_sandbox(lua_State *L, const char *root)
{
    drop(L, "os", "execute");
    drop(L, "os", "tmpname");
    drop(L, "io", "popen");
    drop(L, "package", "loadlib");
    lua_pushnil(L);                                               /* nil */
    lua_setglobal(L, "debug");                                    /* */
    if (lua_getglobal(L, "package") == LUA_TTABLE) {              /* P */
        lua_getfield(L, -1, "loaded");                            /* P loaded */
        lua_pushnil(L);                                           /* P loaded nil */
        lua_setfield(L, -2, "debug");                             /* P loaded */
        lua_pop(L, 1);                                            /* P */
        lua_pushliteral(L, "");                                   /* P "" */
        lua_setfield(L, -2, "cpath");                             /* P */
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", root, root); /* P path */
        lua_setfield(L, -2, "path");                              /* P */
        /* keep the preload searcher; the Lua-file one becomes text only; drop the C and
         * all-in-one ones */
        if (lua_getfield(L, -1, "searchers") == LUA_TTABLE) { /* P S */
            for (lua_Integer i = (lua_Integer)lua_rawlen(L, -1); i > 2; i--) {
                lua_pushnil(L);        /* P S nil */
                lua_rawseti(L, -2, i); /* P S */
            }
            lua_pushcfunction(L, l_search_text); /* P S f */
            lua_rawseti(L, -2, 2);               /* P S */
        }
        lua_pop(L, 1); /* P */
    }
    lua_pop(L, 1);                              /* */
    if (lua_getglobal(L, "io") == LUA_TTABLE) { /* io */
        confine(L, root, "open", "io.open", 1);
        confine(L, root, "lines", "io.lines", 1);
        confine(L, root, "input", "io.input", 1);
        confine(L, root, "output", "io.output", 1);
    }
    lua_pop(L, 1);                              /* */
    if (lua_getglobal(L, "os") == LUA_TTABLE) { /* os */
        confine(L, root, "remove", "os.remove", 1);
        confine(L, root, "rename", "os.rename", 2);
    }
    lua_pop(L, 1);                           /* */
    lua_pushglobaltable(L);                  /* G */
    lua_getfield(L, -1, "load");             /* G load */
    lua_pushcclosure(L, l_load_text, 1);     /* G load' */
    lua_setfield(L, -2, "load");             /* G */
    lua_getfield(L, -1, "loadfile");         /* G loadfile */
    lua_pushliteral(L, "loadfile");          /* G loadfile name */
    lua_pushstring(L, root);                 /* G loadfile name root */
    lua_pushcclosure(L, l_loadfile_text, 3); /* G loadfile' */
    lua_setfield(L, -2, "loadfile");         /* G */
    lua_pushstring(L, root);                 /* G root */
    lua_pushcclosure(L, l_dofile_text, 1);   /* G dofile' */
    lua_setfield(L, -2, "dofile");           /* G */
    lua_pop(L, 1);                           /* */
}
