<?php
// An iskdaemon client as PHP users write it (Debian's php-xmlrpc and PHP's http stream,
// which sends the URL's user:KEY as Basic auth). Prints one JSON line per check.
// usage: php isk_client.php URL IMAGE DBID ID
[$_, $url, $image, $db, $id] = $argv;
$db = (int)$db;
$id = (int)$id;

function call(string $url, string $method, array $params) {
  $request = xmlrpc_encode_request($method, $params);
  $context = stream_context_create(['http' => [
    'method' => 'POST', 'header' => "Content-Type: text/xml\r\n", 'content' => $request, 'ignore_errors' => true,
  ]]);
  return xmlrpc_decode(file_get_contents($url, false, $context));
}

function check(string $name, $got, $want): void {
  echo json_encode(['check' => $name, 'ok' => $got === $want, 'got' => substr(var_export($got, true), 0, 200), 'want' => var_export($want, true)]), "\n";
}

$data = file_get_contents($image);
$blob = $data;
xmlrpc_set_type($blob, 'base64');
check('createDb', call($url, 'createDb', [$db]), $db);
check('addImgBlob with <base64>', call($url, 'addImgBlob', [$db, $id, $blob]), 1);
check('addImgBlob with base64 text in a <string>', call($url, 'addImgBlob', [$db, $id + 1, base64_encode($data)]), 1);
$results = call($url, 'queryImgBlob', [$db, $blob, 3]);
check('queryImgBlob finds it first', in_array($results[0][0], [$id, $id + 1], true), true);
check('getDbImgCount', call($url, 'getDbImgCount', [$db]), 2);
check('removeImg', call($url, 'removeImg', [$db, $id]), 1);
check('removeImg of a missing image is 0', call($url, 'removeImg', [$db, $id]), 0);

$parts = parse_url($url);
$anonymous = "{$parts['scheme']}://{$parts['host']}:{$parts['port']}{$parts['path']}";
$fault = call($anonymous, 'resetDb', [$db]);
check('anonymous resetDb refused', is_array($fault) && xmlrpc_is_fault($fault) ? $fault['faultCode'] : 'no fault', 10);
