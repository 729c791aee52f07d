use super::*;
use crate::plugin::authority::DirCap;
use std::os::unix::fs::PermissionsExt;

fn caps(dirs: &[(&Path, bool)]) -> Effective {
    Effective {
        dirs: dirs
            .iter()
            .map(|(p, w)| DirCap {
                path: p.to_path_buf(),
                write: *w,
                anchor: p.to_path_buf(),
            })
            .collect(),
        ..Default::default()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn copies_permissions_and_links_inside_grants_only() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir_all(a.join("bin")).unwrap();
    std::fs::write(a.join("bin/run"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(a.join("bin/run"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("bin/run", a.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc", a.join("abs-link")).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let c = caps(&[(&a, false), (&b, true)]);
    let to = b.join("copy");
    let stats = copy_tree(&c, "p", s(&a), s(&to), &mut |_| true).unwrap();
    assert_eq!((stats.files, stats.dirs), (1, 2));
    let mode = std::fs::metadata(to.join("bin/run"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o750);
    assert_eq!(
        std::fs::read_link(to.join("link")).unwrap(),
        PathBuf::from("bin/run")
    );
    assert_eq!(
        std::fs::read_link(to.join("abs-link")).unwrap(),
        PathBuf::from("/etc")
    );
    // A re-run completes the copy over what is there.
    copy_tree(&c, "p", s(&a), s(&to), &mut |_| true).unwrap();
    // Into a read-only grant, or from outside every grant: denied, naming the grant.
    let e = copy_tree(&c, "p", s(&b), s(&a.join("x")), &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[grants] dirs") && e.contains("read-write"),
        "{e}"
    );
    let e = copy_tree(&c, "p", "/etc", s(&to), &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("copy-tree from `/etc` denied"), "{e}");
    let e = copy_tree(
        &c,
        "p",
        &format!("{}/../../etc", a.display()),
        s(&to),
        &mut |_| true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("denied"), "{e}");
}

#[test]
fn a_copy_never_follows_a_link_out_and_refuses_its_own_subfolder() {
    let t = tempfile::tempdir().unwrap();
    let (g, secret) = (t.path().join("g"), t.path().join("secret"));
    std::fs::create_dir_all(g.join("src/sub")).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("canary"), "hidden").unwrap();
    std::os::unix::fs::symlink("../..", g.join("out")).unwrap();
    let c = caps(&[(&g, true)]);
    let e = copy_tree(
        &c,
        "p",
        s(&g.join("out")),
        s(&g.join("stolen")),
        &mut |_| true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("symbolic link") && e.contains("[grants] dirs"),
        "{e}"
    );
    let e = write_atomic(&c, "p", s(&g.join("out/secret/canary")), b"owned")
        .unwrap_err()
        .to_string();
    assert!(e.contains("symbolic link"), "{e}");
    assert_eq!(
        std::fs::read_to_string(secret.join("canary")).unwrap(),
        "hidden"
    );
    // Into its own subfolder: refused, lexically and through another path to it.
    let e = copy_tree(
        &c,
        "p",
        s(&g.join("src")),
        s(&g.join("src/sub/copy")),
        &mut |_| true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("inside the source"), "{e}");
    let alias = t.path().join("alias");
    std::os::unix::fs::symlink(g.join("src"), &alias).unwrap();
    let c2 = caps(&[(&g, true), (&alias, true)]);
    let e = copy_tree(
        &c2,
        "p",
        s(&g.join("src")),
        s(&alias.join("sub/copy")),
        &mut |_| true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("inside the source"), "{e}");
}

#[test]
fn fifos_are_refused_without_blocking() {
    let t = tempfile::tempdir().unwrap();
    let g = t.path().to_path_buf();
    std::fs::create_dir_all(g.join("d")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        g.join("d/pipe"),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let c = caps(&[(&g, true)]);
    let e = copy_tree(&c, "p", s(&g.join("d")), s(&g.join("copy")), &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let e = write_atomic(&c, "p", s(&g.join("d/pipe")), b"x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn deep_trees_copy_without_recursion_up_to_the_depth_limit() {
    let t = tempfile::tempdir().unwrap();
    let g = t.path().to_path_buf();
    let mut p = g.join("src");
    for _ in 0..200 {
        p = p.join("d");
    }
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("leaf"), "x").unwrap();
    let c = caps(&[(&g, true)]);
    let stats = copy_tree(&c, "p", s(&g.join("src")), s(&g.join("dst")), &mut |_| true).unwrap();
    assert_eq!(stats.files, 1);
    for _ in 0..100 {
        p = p.join("d");
    }
    std::fs::create_dir_all(&p).unwrap();
    let e = copy_tree(&c, "p", s(&g.join("src")), s(&g.join("dst2")), &mut |_| {
        true
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("deeper than"), "{e}");
}

#[test]
fn a_directory_swapped_for_a_link_during_copies_never_leaks() {
    let t = tempfile::tempdir().unwrap();
    let (g, secret) = (t.path().join("g"), t.path().join("secret"));
    std::fs::create_dir_all(g.join("tree/sub")).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("canary"), "hidden").unwrap();
    for i in 0..200 {
        std::fs::write(g.join(format!("tree/f{i}")), "data").unwrap();
        std::fs::write(g.join(format!("tree/sub/s{i}")), "data").unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (g, secret, stop) = (g.clone(), secret.clone(), stop.clone());
        std::thread::spawn(move || {
            let (sub, real, link) = (g.join("tree/sub"), g.join("real"), g.join("link"));
            let _ = std::os::unix::fs::symlink(&secret, &link);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::rename(&sub, &real);
                let _ = std::fs::rename(&link, &sub);
                std::thread::yield_now();
                let _ = std::fs::rename(&sub, &link);
                let _ = std::fs::rename(&real, &sub);
            }
        })
    };
    let c = caps(&[(&g, true)]);
    for i in 0..60 {
        let _ = copy_tree(
            &c,
            "p",
            s(&g.join("tree")),
            s(&g.join(format!("c{i}"))),
            &mut |_| true,
        );
        let _ = write_atomic(&c, "p", s(&g.join("tree/sub/canary")), b"owned");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(
        std::fs::read_to_string(secret.join("canary")).unwrap(),
        "hidden"
    );
    assert_eq!(
        std::fs::read_dir(&secret).unwrap().count(),
        1,
        "nothing written next to it"
    );
    let mut stack = vec![g.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                assert_ne!(
                    std::fs::read_to_string(e.path()).unwrap(),
                    "hidden",
                    "{:?}",
                    e.path()
                );
            }
        }
    }
}

#[test]
fn write_atomic_keeps_permissions_and_stays_in_grants() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("state.dat");
    std::fs::write(&f, "old").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = caps(&[(t.path(), true)]);
    write_atomic(&c, "p", s(&f), b"new").unwrap();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
    let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let e = write_atomic(&c, "p", "/etc/passwd", b"x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("[grants] dirs"), "{e}");
    std::os::unix::fs::symlink("/etc/hostname", t.path().join("out")).unwrap();
    let out = t.path().join("out");
    assert!(write_atomic(&c, "p", s(&out), b"x").is_err());
    // Concurrent writers of one file each complete; the last rename wins.
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (c, f) = (c.clone(), f.clone());
            std::thread::spawn(move || {
                for _ in 0..20 {
                    write_atomic(&c, "p", s(&f), format!("{i}").as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(std::fs::read_to_string(&f).unwrap().len(), 1);
}

#[test]
fn a_substituting_copy_changes_only_the_named_files_in_order() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir_all(a.join("task")).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("task/.metadata"), "x=/old/1 y=/old/2").unwrap();
    std::fs::set_permissions(
        a.join("task/.metadata"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::write(a.join("task/other.txt"), "x=/old/1").unwrap();
    std::fs::write(a.join("task/same.metadata"), "nothing to change").unwrap();
    let c = caps(&[(&a, false), (&b, true)]);
    let sub = |from: &str, to: &str| Substitution {
        suffix: b".metadata".to_vec(),
        from: from.as_bytes().to_vec(),
        to: to.as_bytes().to_vec(),
    };
    // Applied in order, the second to what the first wrote.
    let subs = [sub("/old/", "/new/"), sub("/new/2", "/new/two")];
    let to = b.join("copy");
    let stats = copy_substituting(&c, "p", s(&a), s(&to), &subs, &mut |_| true).unwrap();
    assert_eq!((stats.files, stats.substituted), (3, 1));
    let read = |p: &str| std::fs::read_to_string(to.join(p)).unwrap();
    assert_eq!(read("task/.metadata"), "x=/new/1 y=/new/two");
    assert_eq!(read("task/other.txt"), "x=/old/1");
    assert_eq!(read("task/same.metadata"), "nothing to change");
    let mode = std::fs::metadata(to.join("task/.metadata"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    // The source is never changed; a re-run over the copy gives the same result.
    assert_eq!(
        std::fs::read_to_string(a.join("task/.metadata")).unwrap(),
        "x=/old/1 y=/old/2"
    );
    copy_substituting(&c, "p", s(&a), s(&to), &subs, &mut |_| true).unwrap();
    assert_eq!(read("task/.metadata"), "x=/new/1 y=/new/two");
    // An empty pattern is refused before anything is copied.
    let e = copy_substituting(
        &c,
        "p",
        s(&a),
        s(&b.join("c2")),
        &[sub("", "x")],
        &mut |_| true,
    )
    .unwrap_err();
    assert!(format!("{e:?}").contains("empty `from`"), "{e:?}");
    assert!(!b.join("c2").exists());
}
